"""Settings for the marketplace credential, the log sink and telemetry: parsed, refused precisely, round-tripped."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import pytest

from lifecycle.settings import LogSink, MarketplaceCredential, Settings, SettingsError, unresolved_references


def test_the_credential_defaults_to_a_client_secret() -> None:
    assert Settings.from_env({}).marketplace_credential is MarketplaceCredential.SECRET


def test_federated_mode_reads_the_identity_from_azure_client_id() -> None:
    settings = Settings.from_env({"MARKETPLACE_CREDENTIAL": " Federated ", "AZURE_CLIENT_ID": "mi-client"})
    assert settings.marketplace_credential is MarketplaceCredential.FEDERATED
    assert settings.managed_identity_client_id == "mi-client"


def test_an_unknown_credential_mode_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"MARKETPLACE_CREDENTIAL='certificate': use 'secret' .* or 'federated'"):
        Settings.from_env({"MARKETPLACE_CREDENTIAL": "certificate"})


def test_logs_go_to_stderr_unless_the_functions_host_runs_us() -> None:
    assert Settings.from_env({}).log_sink is LogSink.STDERR
    assert Settings.from_env({"FUNCTIONS_WORKER_RUNTIME": "python"}).log_sink is LogSink.LOGGING


def test_an_explicit_log_sink_wins_over_detection() -> None:
    settings = Settings.from_env({"FUNCTIONS_WORKER_RUNTIME": "python", "LOG_SINK": "stderr"})
    assert settings.log_sink is LogSink.STDERR
    assert Settings.from_env({"LOG_SINK": "logging"}).log_sink is LogSink.LOGGING


def test_an_unknown_log_sink_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="LOG_SINK='file'"):
        Settings.from_env({"LOG_SINK": "file"})


def test_telemetry_is_off_without_a_connection_string() -> None:
    assert Settings.from_env({}).applicationinsights_connection_string == ""
    on = Settings.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=abc"})
    assert on.applicationinsights_connection_string == "InstrumentationKey=abc"


def not_the_default(field: dataclasses.Field[Any], default: Any) -> Any:
    """A valid value of the field's type that differs from its default."""
    if isinstance(default, enum.Enum):
        return next(member for member in type(default) if member is not default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default + 3
    if field.name.endswith("log_level"):
        return "DEBUG" if default != "DEBUG" else "ERROR"
    return f"{field.name}-value"


def test_every_setting_survives_a_round_trip_through_the_environment() -> None:
    # from_env and to_env each name every variable: a setting one of them forgets fails here.
    defaults = Settings()
    changed = {f.name: not_the_default(f, getattr(defaults, f.name)) for f in dataclasses.fields(Settings)}
    settings = Settings(**changed)

    again = Settings.from_env(settings.to_env(secret=True))

    assert {name: getattr(again, name) for name in changed} == changed


def test_log_levels_default_to_info_for_ours_and_warning_for_the_libraries() -> None:
    settings = Settings.from_env({})
    assert (settings.log_level, settings.library_log_level) == ("INFO", "WARNING")
    settings = Settings.from_env({"LOG_LEVEL": "debug", "LIBRARY_LOG_LEVEL": " info "})
    assert (settings.log_level, settings.library_log_level) == ("DEBUG", "INFO")
    assert Settings.from_env(settings.to_env()).library_log_level == "INFO"


@pytest.mark.parametrize("name", ["LOG_LEVEL", "LIBRARY_LOG_LEVEL"])
def test_an_unknown_log_level_is_refused_with_the_levels_there_are(name: str) -> None:
    with pytest.raises(SettingsError, match=rf"{name}='VERBOSE': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        Settings.from_env({name: "verbose"})


def test_the_level_names_pythons_logging_also_takes_are_accepted() -> None:
    settings = Settings.from_env({"LOG_LEVEL": "warn", "LIBRARY_LOG_LEVEL": "FATAL"})
    assert (settings.log_level, settings.library_log_level) == ("WARNING", "CRITICAL")


def test_key_vault_references_app_service_could_not_resolve_are_found_by_name() -> None:
    reference = "@Microsoft.KeyVault(VaultName=kv-abc;SecretName=marketplace-client-secret)"
    env = {"MARKETPLACE_CLIENT_SECRET": reference, "PRODUCT_SIGNING_SECRET": " " + reference, "LOG_LEVEL": "INFO",
           "OTHER": "s3cret@Microsoft.KeyVault("}
    assert unresolved_references(env) == ["MARKETPLACE_CLIENT_SECRET", "PRODUCT_SIGNING_SECRET"]
    # Not refused by the settings themselves: an unresolved product secret must not stop the worker.
    assert Settings.from_env(env).client_secret == reference
