"""The product integration is deployed from parameters, so `azd provision` keeps it.

ARM replaces a site's whole list of app settings on each deployment: a PRODUCT_* setting
added by hand in the portal is gone after the next `azd provision`, and the worker then
tells the product nothing. These pin that the template carries them, that an empty URL
still means "no product", and that the signing secret only ever reaches the app as a Key
Vault reference, with a vault to hold it whatever the marketplace credential.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra import INFRA, Param, app_settings, evaluate, main, module

PRODUCT_SETTINGS = {"PRODUCT_EVENTS_URL", "PRODUCT_VETO_URL", "PRODUCT_VETO_DEFAULT", "PRODUCT_SIGNING_SECRET"}
REFERENCE = re.compile(r"@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=\$\{(\w+)\}\)")
EVENTS = "https://product.example/lifecycle/events"
VETO = "https://product.example/lifecycle/veto"
# As main.bicep hands them to the functionapp module when a product is connected.
CONNECTED = {"productEventsUrl": EVENTS, "productSigningSecretReference": "@Microsoft.KeyVault(...)"}

parameters = main().section("parameters")
given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]


def decorators(spec: dict[str, Any]) -> dict[str, Any]:
    return {decorator["type"]: decorator.get("argument") for decorator in spec["decorators"]}


def function_app_call() -> dict[str, Any]:
    params: dict[str, Any] = main().section("modules")["functionApp"]["config"]["params"]
    return params


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [("productEventsUrl", "PRODUCT_EVENTS_URL"), ("productVetoUrl", "PRODUCT_VETO_URL"),
     ("productVetoDefault", "PRODUCT_VETO_DEFAULT"), ("productSigningSecret", "PRODUCT_SIGNING_SECRET")],
)
def test_each_product_setting_is_a_parameter_azd_fills_from_the_variable_of_the_same_name(
    parameter: str, variable: str
) -> None:
    assert parameter in parameters, f"main.bicep has no {parameter}: a hand-set {variable} would not survive"
    assert re.fullmatch(rf"\$\{{{variable}(=[a-z]+)?\}}", given[parameter]["value"]), given[parameter]


@pytest.mark.parametrize("parameter", ["productEventsUrl", "productVetoUrl", "productSigningSecret"])
def test_the_product_is_optional(parameter: str) -> None:
    assert parameters[parameter]["default"] == ""


def test_the_veto_default_offers_what_the_worker_accepts_and_defaults_as_it_does() -> None:
    from lifecycle.settings import Settings, VetoDefault

    spec = parameters["productVetoDefault"]
    assert sorted(decorators(spec)["allowed"]) == sorted(verdict.value for verdict in VetoDefault)
    assert spec["default"] == Settings().product_veto_default.value
    assert given["productVetoDefault"]["value"] == f"${{PRODUCT_VETO_DEFAULT={spec['default']}}}"


def test_the_signing_secret_parameter_is_secure() -> None:
    assert "secure" in decorators(parameters["productSigningSecret"])


@pytest.mark.parametrize("credential", ["secret", "federated"])
def test_without_a_product_url_no_product_setting_is_deployed(credential: str) -> None:
    from lifecycle.settings import Settings

    deployed = app_settings(credential)
    assert not set(deployed) & PRODUCT_SETTINGS
    settings = Settings.from_env({name: value for name, value in deployed.items() if isinstance(value, str)})
    assert settings.product_events_url == ""  # the worker's NoopProduct: nothing sent, nothing asked
    assert settings.product_veto_url == ""


def test_with_an_events_url_the_app_gets_it_and_the_signing_secret_reference() -> None:
    deployed = app_settings(**CONNECTED)
    assert deployed["PRODUCT_EVENTS_URL"] == Param("productEventsUrl")
    assert deployed["PRODUCT_SIGNING_SECRET"] == Param("productSigningSecretReference")
    assert "PRODUCT_VETO_URL" not in deployed  # no veto asked for: none deployed


def test_with_a_veto_url_the_app_gets_it_with_its_default_verdict() -> None:
    deployed = app_settings(productVetoUrl=VETO, productSigningSecretReference="@Microsoft.KeyVault(...)")
    assert deployed["PRODUCT_VETO_URL"] == Param("productVetoUrl")
    assert deployed["PRODUCT_VETO_DEFAULT"] == Param("productVetoDefault")
    assert "PRODUCT_EVENTS_URL" not in deployed


def test_main_hands_the_product_parameters_to_the_app_unchanged() -> None:
    call = function_app_call()
    for name in ("productEventsUrl", "productVetoUrl", "productVetoDefault"):
        assert call[name] == name, f"{name} should reach the app as given"


def test_the_signing_secret_reaches_the_app_only_as_a_key_vault_reference_while_a_product_is_connected() -> None:
    choice = function_app_call()["productSigningSecretReference"]["operator"]["operands"]
    assert choice["condition"] == "hasProduct"
    found = REFERENCE.fullmatch(choice["true_value"])
    assert found, choice["true_value"]
    assert main().resolve(found.group(1)) == "product-signing-secret"
    assert choice["false_value"] == ""
    passed = json.dumps(function_app_call())
    assert not re.search(r"\bproductSigningSecret\b", passed), "the secret itself must not reach the app"


@pytest.mark.parametrize(
    ("events", "veto", "connected"), [("", "", False), (EVENTS, "", True), ("", VETO, True), (EVENTS, VETO, True)]
)
def test_a_product_is_connected_when_either_url_is_set(events: str, veto: str, connected: bool) -> None:
    assert evaluate(main().resolve("hasProduct"), {"productEventsUrl": events, "productVetoUrl": veto}) is connected


@pytest.mark.parametrize(
    ("credential", "events", "secret", "vault"),
    [
        ("secret", "", "", True),  # the client secret's vault, as before
        ("federated", "", "", False),  # nothing to keep: no vault
        ("federated", EVENTS, "", True),  # the signing secret needs one
        ("federated", "", "s3cret", True),  # a signing secret given ahead of the URL is kept too
    ],
)
def test_the_vault_is_deployed_whenever_there_is_a_secret_to_keep(
    credential: str, events: str, secret: str, vault: bool
) -> None:
    values = {"marketplaceCredential": credential, "productEventsUrl": events, "productVetoUrl": "",
              "productSigningSecret": secret}
    assert main().section("modules")["vault"]["config"]["condition"] == "useVault"
    assert evaluate(main().resolve("useVault"), values) is vault
    # The app's reference, the roles and the output all name the vault only when it exists.
    assert bool(evaluate(main().resolve("keyVaultName"), values)) is vault


def test_a_federated_deployment_writes_no_client_secret_into_its_vault() -> None:
    passed = main().section("modules")["vault"]["config"]["config"]["params"]["secretValue"]
    choice = passed["operator"]["operands"]
    assert (choice["condition"], choice["true_value"], choice["false_value"]) == (
        "useSecret", "marketplaceClientSecret", "")


def test_the_vault_writes_the_signing_secret_given_under_the_name_the_reference_reads() -> None:
    params = main().section("modules")["vault"]["config"]["config"]["params"]
    assert params["productSecretValue"] == "productSigningSecret"
    assert main().resolve(params["productSecretName"]) == "product-signing-secret"
    keyvault = module("keyvault")
    call = keyvault.section("modules")["productSecret"]["config"]
    condition = call["condition"]
    assert evaluate(keyvault.resolve(condition), {"productSecretValue": ""}) is False
    assert evaluate(keyvault.resolve(condition), {"productSecretValue": "s3cret"}) is True
    assert call["config"]["params"]["value"] == "productSecretValue"
    assert call["config"]["params"]["name"] == "productSecretName"
