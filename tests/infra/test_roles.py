"""The app's identity gets each data role it needs, at a narrow scope, and nothing broad."""

from __future__ import annotations

from tests.infra import module

roles = module("roles")

# Azure built-in role definition ids.
BUILT_IN = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
}
# Roles that can read keys, change access or manage everything: never for the app.
BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}


def assignments() -> list[tuple[str, str, str]]:
    """(principal parameter, role name, scope resource) for each role assignment."""
    table = roles.resolve("role")
    found = []
    for body in roles.resources("Microsoft.Authorization/roleAssignments"):
        role_key = body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        role_id = table[role_key["operator"]["operands"]["operand_2"]]
        role = BUILT_IN.get(role_id, BROAD.get(role_id, role_id))
        found.append((body["properties"]["principalId"], role, body["scope"]))
    return found


def test_the_identity_gets_the_data_roles_the_worker_and_host_need() -> None:
    granted = {(role, scope) for principal, role, scope in assignments() if principal == "principalId"}
    assert granted >= {
        ("Storage Blob Data Owner", "account"),
        ("Storage Table Data Contributor", "account"),
        ("Azure Service Bus Data Sender", "queue"),
        ("Azure Service Bus Data Receiver", "queue"),
        ("Monitoring Metrics Publisher", "applicationInsights"),
        ("Key Vault Secrets User", "vault"),
    }


def test_service_bus_roles_are_scoped_to_the_lifecycle_queue() -> None:
    assert {scope for _, role, scope in assignments() if "Service Bus" in role} == {"queue"}


def test_every_role_is_a_known_narrow_built_in_role() -> None:
    for _, role, _ in assignments():
        assert role in BUILT_IN.values(), f"unexpected role {role}"


def test_the_deployer_may_only_manage_secrets() -> None:
    assert [(role, scope) for principal, role, scope in assignments() if principal == "deployerPrincipalId"] == [
        ("Key Vault Secrets Officer", "vault")
    ]


def test_assignments_to_the_identity_name_it_as_a_service_principal() -> None:
    for body in roles.resources("Microsoft.Authorization/roleAssignments"):
        if body["properties"]["principalId"] == "principalId":
            assert body["properties"]["principalType"] == "ServicePrincipal"
