"""Security properties that must never regress: no keys anywhere, TLS 1.2, HTTPS only,
no FTP or basic-auth publishing, secrets only in Key Vault."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra import INFRA, MAIN, ROOT, bicep, bicep_files, module, without_comments

# What a key-bearing connection string or a key lookup looks like in Bicep or JSON.
KEY_MATERIAL = re.compile(
    r"AccountKey=|SharedAccessKey=|SharedAccessSignature=|listKeys\s*\(|listConnectionStrings\s*\("
    r"|listAccountSas\s*\(|listServiceSas\s*\(|\.listKeys\(|primaryKey|secondaryKey",
    re.IGNORECASE,
)
DEPLOYED_TEXT = [*bicep_files(), INFRA / "main.parameters.json", ROOT / "azure.yaml"]


@pytest.mark.parametrize("path", DEPLOYED_TEXT, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_key_or_key_bearing_connection_string_is_deployed(path: Path) -> None:
    text = without_comments(path.read_text()) if path.suffix == ".bicep" else path.read_text()
    assert not KEY_MATERIAL.search(text), KEY_MATERIAL.search(text)


storage = module("storage")
ACCOUNT = storage.resource("Microsoft.Storage/storageAccounts")


def test_storage_accepts_no_shared_key() -> None:
    assert storage.prop(ACCOUNT, "properties.allowSharedKeyAccess") is False


def test_storage_allows_no_anonymous_blob_access() -> None:
    assert storage.prop(ACCOUNT, "properties.allowBlobPublicAccess") is False


def test_storage_is_https_only_with_tls_1_2() -> None:
    assert storage.prop(ACCOUNT, "properties.supportsHttpsTrafficOnly") is True
    assert storage.prop(ACCOUNT, "properties.minimumTlsVersion") == "TLS1_2"


functionapp = module("functionapp")
SITE = functionapp.resource("Microsoft.Web/sites")


def test_the_function_app_is_https_only() -> None:
    assert functionapp.prop(SITE, "properties.httpsOnly") is True


def test_the_function_app_and_its_deployment_endpoint_require_tls_1_2() -> None:
    assert functionapp.prop(SITE, "properties.siteConfig.minTlsVersion") == "1.2"
    assert functionapp.prop(SITE, "properties.siteConfig.scmMinTlsVersion") == "1.2"


def test_ftp_is_off() -> None:
    assert functionapp.prop(SITE, "properties.siteConfig.ftpsState") == "Disabled"


def test_publishing_with_user_names_and_passwords_is_off() -> None:
    policies = functionapp.resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {functionapp.prop(policy, "name"): functionapp.prop(policy, "properties.allow") for policy in policies} == {
        "ftp": False,
        "scm": False,
    }


keyvault = module("keyvault")
VAULT = keyvault.resource("Microsoft.KeyVault/vaults")


def test_key_vault_grants_access_by_rbac_only() -> None:
    assert keyvault.prop(VAULT, "properties.enableRbacAuthorization") is True
    assert "accessPolicies" not in VAULT["properties"]


def test_a_deleted_secret_or_vault_can_be_recovered() -> None:
    assert keyvault.prop(VAULT, "properties.enableSoftDelete") is True
    assert keyvault.prop(VAULT, "properties.enablePurgeProtection") is True


@pytest.mark.parametrize(
    ("file", "parameter"),
    [("main", "marketplaceClientSecret"), ("main", "productSigningSecret"), ("keyvault", "secretValue"),
     ("keyvault", "productSecretValue"), ("keyvault-secret", "value")],
)
def test_the_secret_value_is_a_secure_parameter(file: str, parameter: str) -> None:
    parsed = bicep(MAIN) if file == "main" else module(file)
    decorators = [decorator["type"] for decorator in parsed.section("parameters")[parameter]["decorators"]]
    assert "secure" in decorators, f"{file}.bicep: {parameter} must be @secure()"


def test_application_insights_accepts_only_entra_authenticated_telemetry() -> None:
    monitoring = module("monitoring")
    component = monitoring.resource("Microsoft.Insights/components")
    assert monitoring.prop(component, "properties.DisableLocalAuth") is True


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: str(path.relative_to(INFRA)))
def test_every_accepted_checkov_finding_says_why(path: Path) -> None:
    for check, reason in re.findall(r"checkov:skip=([A-Z0-9_]+)(?::\s*([^\n]*))?", path.read_text()):
        assert len(reason.split()) >= 6, f"{path.name}: skip of {check} needs a reason"
