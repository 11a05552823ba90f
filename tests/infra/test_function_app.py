"""The Function App as deployed: Flex Consumption, Python 3.11, its identity, and app
settings that match what the code and the Functions host read."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra import HOST_SETTINGS, ROOT, Param, app_settings, main, module, settings_the_worker_reads

functionapp = module("functionapp")
SITE = functionapp.resource("Microsoft.Web/sites")
PLAN = functionapp.resource("Microsoft.Web/serverfarms")

REQUIRED = {
    "MARKETPLACE_TENANT_ID",
    "MARKETPLACE_CLIENT_ID",
    "MARKETPLACE_CLIENT_SECRET",
    "WEBHOOK_AUTH",
    "STORAGE_TABLE_ENDPOINT",
    "TABLE_PREFIX",
    "SERVICEBUS_NAMESPACE",
    "SERVICEBUS_QUEUE",
    *HOST_SETTINGS,
}
# Flex Consumption refuses these, or they would bring a key or a file share back.
FORBIDDEN = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",
    "STORAGE_CONNECTION_STRING",
    "SERVICEBUS_CONNECTION_STRING",
    "SERVICEBUS",
}


def first_group(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, pattern
    return found.group(1)


def test_the_app_runs_python_3_11_on_the_flex_consumption_plan() -> None:
    assert functionapp.prop(PLAN, "sku") == {"name": "FC1", "tier": "FlexConsumption"}
    assert functionapp.prop(SITE, "properties.functionAppConfig.runtime") == {"name": "python", "version": "3.11"}


def test_the_app_runs_as_its_user_assigned_identity_everywhere() -> None:
    assert functionapp.prop(SITE, "identity.type") == "UserAssigned"
    assert functionapp.prop(SITE, "properties.keyVaultReferenceIdentity") == Param("identityId")
    authentication = functionapp.prop(SITE, "properties.functionAppConfig.deployment.storage.authentication")
    assert authentication == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": Param("identityId")}


@pytest.mark.parametrize("credential", ["secret", "federated"])
def test_no_setting_flex_consumption_refuses_or_that_would_carry_a_key(credential: str) -> None:
    assert not set(app_settings(credential)) & FORBIDDEN
    assert not set(app_settings(credential, **PRODUCT)) & FORBIDDEN


def test_the_app_gets_every_setting_the_worker_and_host_need() -> None:
    missing = REQUIRED - set(app_settings("secret"))
    assert not missing, sorted(missing)


# With every optional setting the template can deploy: a product with events and a veto.
PRODUCT = {"productEventsUrl": "https://product.example/events", "productVetoUrl": "https://product.example/veto",
           "productSigningSecretReference": "@Microsoft.KeyVault(...)"}


@pytest.mark.parametrize("product", [{}, PRODUCT], ids=["no-product", "product"])
@pytest.mark.parametrize("credential", ["secret", "federated"])
def test_every_setting_is_read_by_the_worker_or_the_host(credential: str, product: dict[str, str]) -> None:
    known = settings_the_worker_reads() | HOST_SETTINGS
    deployed = set(app_settings(credential, **product))
    assert deployed <= known, sorted(deployed - known)


def test_the_host_and_the_trigger_connect_as_the_identity() -> None:
    settings = app_settings()
    for connection in ("AzureWebJobsStorage", "SERVICEBUS"):
        assert settings[f"{connection}__credential"] == "managedidentity"
        assert settings[f"{connection}__clientId"] == Param("identityClientId")
    assert settings["AZURE_CLIENT_ID"] == Param("identityClientId")
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_the_trigger_connection_and_queue_name_are_the_ones_the_processor_names() -> None:
    source = (ROOT / "functions" / "processor.py").read_text()
    connection = first_group(r'connection="(\w+)"', source)
    queue_setting = first_group(r'queue_name="%(\w+)%"', source)
    settings = app_settings()
    assert f"{connection}__fullyQualifiedNamespace" in settings
    assert queue_setting in settings


def test_the_worker_and_the_trigger_use_the_same_namespace() -> None:
    settings = app_settings()
    assert settings["SERVICEBUS_NAMESPACE"] == Param("serviceBusHost")
    assert settings["SERVICEBUS__fullyQualifiedNamespace"] == Param("serviceBusHost")


def test_the_client_secret_is_a_key_vault_reference() -> None:
    assert app_settings("secret")["MARKETPLACE_CLIENT_SECRET"] == Param("clientSecretReference")
    passed = main().section("modules")["functionApp"]["config"]["params"]["clientSecretReference"]
    choice = passed["operator"]["operands"]  # useSecret ? '<reference>' : ''
    assert choice["condition"] == "useSecret"
    assert re.fullmatch(r"@Microsoft\.KeyVault\(VaultName=[^;]+;SecretName=[^)]+\)", choice["true_value"])
    assert choice["false_value"] == ""


def test_a_federated_credential_deploys_no_secret() -> None:
    assert "MARKETPLACE_CLIENT_SECRET" not in app_settings("federated")
    assert app_settings("federated")["MARKETPLACE_CREDENTIAL"] == "federated"


def test_a_federated_deployment_settles_into_worker_settings_that_need_no_secret() -> None:
    from lifecycle.marketplace.auth import MsalTokenProvider
    from lifecycle.settings import MarketplaceCredential, Settings

    deployed = {name: value for name, value in app_settings("federated").items() if isinstance(value, str)}
    settings = Settings.from_env(deployed | {"MARKETPLACE_TENANT_ID": "tenant", "MARKETPLACE_CLIENT_ID": "app",
                                             "AZURE_CLIENT_ID": "identity"})
    assert settings.marketplace_credential is MarketplaceCredential.FEDERATED
    MsalTokenProvider(settings)  # builds without MARKETPLACE_CLIENT_SECRET


@pytest.mark.parametrize("credential", ["secret", "federated"])
def test_logs_go_through_stdlib_logging_which_the_host_ships_to_application_insights(credential: str) -> None:
    assert app_settings(credential)["LOG_SINK"] == "logging"


def test_there_is_a_thread_for_each_concurrent_session() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    sessions = host["extensions"]["serviceBus"]["maxConcurrentSessions"]
    assert int(app_settings()["PYTHON_THREADPOOL_THREAD_COUNT"]) >= sessions


def test_the_webhook_url_output_is_the_webhook_route_over_https() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    route = first_group(r'route="([^"]+)"', (ROOT / "functions" / "webhook.py").read_text())
    url = main().section("outputs")["WEBHOOK_URL"]["value"]
    assert url == f"https://${{functionApp.outputs.defaultHostName}}/{host['extensions']['http']['routePrefix']}/{route}"


def test_the_publisher_gives_tenant_app_id_and_webhook_authentication() -> None:
    parameters = main().section("parameters")
    assert parameters["marketplaceTenantId"]["default"] is None
    assert parameters["marketplaceClientId"]["default"] is None
    allowed = {d["type"]: d["argument"] for d in parameters["webhookAuth"]["decorators"]}["allowed"]
    assert sorted(allowed) == ["api", "jwt"]
    assert parameters["webhookAuth"]["default"] == "jwt"


def test_azd_deploys_to_the_app_it_provisions() -> None:
    import yaml  # type: ignore[import-untyped]  # comes with checkov, without stubs

    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    service = main().section("modules")["functionApp"]["config"]["params"]["serviceName"]
    deployed = project["services"][service]
    assert (deployed["project"], deployed["language"], deployed["host"]) == (".", "python", "function")
    assert project["infra"]["path"] == "infra"
    # azd finds the app by this tag: tags: union(tags, { 'azd-service-name': serviceName })
    tagged = functionapp.prop(SITE, "tags")["function"]["parameters"].values()
    assert {"'azd-service-name'": Param("serviceName")} in tagged


def test_the_product_dispatch_timer_is_switched_off_without_a_product_and_on_with_one() -> None:
    # Its every-minute tick would otherwise wake an instance for nothing and defeat scale-to-zero.
    from function_app import app

    names = {function.get_function_name() for function in app.get_functions()}
    assert "product_dispatch" in names  # the switch names a function that exists
    assert app_settings("secret")["AzureWebJobs.product_dispatch.Disabled"] == "true"
    assert "AzureWebJobs.product_dispatch.Disabled" not in app_settings("secret", **PRODUCT)
