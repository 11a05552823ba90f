"""Configuration: the only module that reads the environment.

App settings in Azure; locally the environment of the shell that runs `lifecycle`,
completed from `.env` and `local.settings.json` (`load_local_files`, see `settings_files`).
Every external endpoint is a setting, so the worker runs unchanged against Microsoft or
the sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lifecycle import settings_files

MARKETPLACE_API_APP_ID = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
"""The Fulfillment API's own Entra app id: the token audience, and the webhook's azp/appid."""
UNRESOLVED_REFERENCE = "@Microsoft.KeyVault("  # what App Service leaves in a setting it could not resolve
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}  # as Python's logging takes them


def log_level(value: str, name: str = "LOG_LEVEL") -> str:
    """A logging level's name as Python's logging spells it (WARN and FATAL accepted); SettingsError otherwise."""
    level = value.strip().upper()
    level = _LEVEL_ALIASES.get(level, level)
    if level not in LOG_LEVELS:
        raise SettingsError(f"{name}={level!r}: use one of {', '.join(LOG_LEVELS)}")
    return level


def unresolved_references(env: Mapping[str, str] | None = None) -> list[str]:
    """The settings App Service left as Key Vault references it could not resolve (the secret not
    written yet, or the app's identity not yet allowed to read it): their own text would be
    used as the value. Reported by health, not refused here: an unresolved product secret
    must not stop the webhook and processing too."""
    env = os.environ if env is None else env
    return sorted(name for name, value in env.items() if value.lstrip().startswith(UNRESOLVED_REFERENCE))


class WebhookAuth(StrEnum):
    JWT = "jwt"  # verify Microsoft's bearer token (default)
    API = "api"  # no Entra app on the offer: rely on verification through the API


class ReconcileOperations(StrEnum):
    """Which subscriptions a reconcile run asks for outstanding operations (one API call each)."""

    DRIFTED = "drifted"  # only those found drifted (default: cheap at any size)
    ACTIVE = "active"  # every Subscribed or Suspended one: finds every missed pending change


class MarketplaceCredential(StrEnum):
    """How the worker proves it is the offer's Entra app when asking for Fulfillment API tokens."""

    SECRET = "secret"  # noqa: S105 (a name) MARKETPLACE_CLIENT_SECRET, a Key Vault reference in Azure
    FEDERATED = "federated"  # a managed identity's token as client assertion: no secret anywhere


class LogSink(StrEnum):
    """Where structured log lines go."""

    STDERR = "stderr"  # one line per event on stderr (local runs, tests)
    LOGGING = "logging"  # the stdlib logger "lifecycle": the Functions host ships it to Application Insights


class VetoDefault(StrEnum):
    """What a product veto that does not answer in time counts as."""

    ACCEPT = "accept"
    REJECT = "reject"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


CONFIG_DIR = "LIFECYCLE_CONFIG_DIR"  # where a local `lifecycle` looks for .env and local.settings.json


def load_local_files(default_directory: Path) -> tuple[Path, ...]:
    """Complete this process's environment from `.env` and `local.settings.json` in CONFIG_DIR (else
    `default_directory`), without changing a variable already set; the files read. For the
    `lifecycle` command only: the Functions host has its app settings in the environment."""
    directory = Path(os.environ.get(CONFIG_DIR, "").strip() or default_directory)
    try:
        return settings_files.complete(os.environ, directory)
    except settings_files.SettingsFileError as error:
        raise SettingsError(str(error)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    marketplace_credential: MarketplaceCredential = MarketplaceCredential.SECRET
    managed_identity_client_id: str = ""  # the user-assigned identity (AZURE_CLIENT_ID); empty: system-assigned
    marketplace_api_url: str = "https://marketplaceapi.microsoft.com/api"
    authority_host: str = "https://login.microsoftonline.com"
    marketplace_scope: str = f"{MARKETPLACE_API_APP_ID}/.default"
    authority_ca_bundle: str = ""  # a CA file to trust for the authority (the sandbox's); unset in production
    openid_metadata_url: str = ""  # default: the tenant's v2.0 metadata under authority_host
    webhook_auth: WebhookAuth = WebhookAuth.JWT
    storage_connection_string: str = ""
    storage_table_endpoint: str = ""  # with managed identity, when no connection string is set
    table_prefix: str = "lifecycle"
    servicebus_connection_string: str = ""
    servicebus_namespace: str = ""  # fully qualified, for managed identity when no connection string is set
    servicebus_queue: str = "lifecycle"
    local_queue_path: str = ""  # the local runtime's durable queue; used when no Service Bus is configured
    enqueue_delay_seconds: float = 2.0  # so our PATCH never overtakes the webhook's answer
    webhook_api_timeout_seconds: float = 3.0  # API calls inside the 10-second window
    api_timeout_seconds: float = 10.0
    api_max_attempts: int = 5
    reconcile_schedule: str = "0 */30 * * * *"  # NCRONTAB with seconds; the Functions host reads it itself
    reconcile_stuck_after_hours: float = 24.0  # pending fulfilment start longer than this is reported
    reconcile_settle_seconds: float = 300.0  # drift in an aspect a webhook set more recently waits a run; 0: never
    reconcile_check_operations: ReconcileOperations = ReconcileOperations.DRIFTED
    product_events_url: str = ""  # unset: the product is told nothing (NoopProduct)
    product_signing_secret: str = ""  # HMAC key for product events and veto requests
    product_veto_url: str = ""  # unset: no veto is asked
    product_veto_timeout_seconds: float = 2.0  # inside the webhook's 10-second window, next to the API calls
    product_veto_default: VetoDefault = VetoDefault.ACCEPT  # when the veto does not answer in time or fails
    product_retry_max_seconds: float = 600.0  # a failing event is retried at most this far apart
    ops_api_key: str = ""  # the local ops API's key (Azure checks its own function keys); empty: no access
    log_level: str = "INFO"
    library_log_level: str = "WARNING"  # the Azure SDK's, httpx's and MSAL's loggers under the Functions host
    log_sink: LogSink = LogSink.STDERR
    applicationinsights_connection_string: str = ""  # unset: no telemetry is configured, nothing is sent

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def openid_metadata(self) -> str:
        return self.openid_metadata_url or f"{self.authority}/v2.0/.well-known/openid-configuration"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def text(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def number(name: str, default: float) -> float:
            value = env.get(name, "").strip()
            if not value:
                return default
            try:
                return float(value)
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a number") from None

        def level(name: str, default: str) -> str:
            return log_level(text(name, default), name)

        mode = text("WEBHOOK_AUTH", defaults.webhook_auth.value).lower()
        if mode not in {m.value for m in WebhookAuth}:
            raise SettingsError(f"WEBHOOK_AUTH={mode!r}: use 'jwt' or 'api'")
        operations = text("RECONCILE_CHECK_OPERATIONS", defaults.reconcile_check_operations.value).lower()
        if operations not in {o.value for o in ReconcileOperations}:
            raise SettingsError(f"RECONCILE_CHECK_OPERATIONS={operations!r}: use 'drifted' or 'active'")
        stuck_after = number("RECONCILE_STUCK_AFTER_HOURS", defaults.reconcile_stuck_after_hours)
        if stuck_after < 0:
            raise SettingsError(f"RECONCILE_STUCK_AFTER_HOURS={stuck_after:g} cannot be negative")
        settle = number("RECONCILE_SETTLE_SECONDS", defaults.reconcile_settle_seconds)
        if settle < 0:
            raise SettingsError(f"RECONCILE_SETTLE_SECONDS={settle:g} cannot be negative")
        credential = text("MARKETPLACE_CREDENTIAL", defaults.marketplace_credential.value).lower()
        if credential not in {c.value for c in MarketplaceCredential}:
            raise SettingsError(f"MARKETPLACE_CREDENTIAL={credential!r}: use 'secret' (a client secret) or "
                                "'federated' (the managed identity as the app's federated credential)")
        # The Functions host sets FUNCTIONS_WORKER_RUNTIME for its worker: there, logs must go
        # through stdlib logging, which the host captures and ships to Application Insights.
        hosted = LogSink.LOGGING.value if text("FUNCTIONS_WORKER_RUNTIME", "") else LogSink.STDERR.value
        sink = text("LOG_SINK", hosted).lower()
        if sink not in {s.value for s in LogSink}:
            raise SettingsError(f"LOG_SINK={sink!r}: use 'stderr' or 'logging'")
        veto_default = text("PRODUCT_VETO_DEFAULT", defaults.product_veto_default.value).lower()
        if veto_default not in {v.value for v in VetoDefault}:
            raise SettingsError(f"PRODUCT_VETO_DEFAULT={veto_default!r}: use 'accept' or 'reject'")
        return cls(
            tenant_id=text("MARKETPLACE_TENANT_ID", ""),
            client_id=text("MARKETPLACE_CLIENT_ID", ""),
            client_secret=env.get("MARKETPLACE_CLIENT_SECRET", ""),
            marketplace_credential=MarketplaceCredential(credential),
            managed_identity_client_id=text("AZURE_CLIENT_ID", ""),
            marketplace_api_url=text("MARKETPLACE_API_URL", defaults.marketplace_api_url),
            authority_host=text("MARKETPLACE_AUTHORITY_HOST", defaults.authority_host),
            marketplace_scope=text("MARKETPLACE_SCOPE", defaults.marketplace_scope),
            authority_ca_bundle=text("MARKETPLACE_AUTHORITY_CA_BUNDLE", ""),
            openid_metadata_url=text("WEBHOOK_OPENID_METADATA_URL", ""),
            webhook_auth=WebhookAuth(mode),
            storage_connection_string=text("STORAGE_CONNECTION_STRING", ""),
            storage_table_endpoint=text("STORAGE_TABLE_ENDPOINT", ""),
            table_prefix=text("TABLE_PREFIX", defaults.table_prefix),
            servicebus_connection_string=text("SERVICEBUS_CONNECTION_STRING", ""),
            servicebus_namespace=text("SERVICEBUS_NAMESPACE", ""),
            servicebus_queue=text("SERVICEBUS_QUEUE", defaults.servicebus_queue),
            local_queue_path=text("LOCAL_QUEUE_PATH", ""),
            enqueue_delay_seconds=number("WEBHOOK_ENQUEUE_DELAY_SECONDS", defaults.enqueue_delay_seconds),
            webhook_api_timeout_seconds=number("WEBHOOK_API_TIMEOUT_SECONDS", defaults.webhook_api_timeout_seconds),
            api_timeout_seconds=number("MARKETPLACE_API_TIMEOUT_SECONDS", defaults.api_timeout_seconds),
            api_max_attempts=int(number("MARKETPLACE_API_MAX_ATTEMPTS", defaults.api_max_attempts)),
            reconcile_schedule=text("RECONCILE_SCHEDULE", defaults.reconcile_schedule),
            reconcile_stuck_after_hours=stuck_after,
            reconcile_settle_seconds=settle,
            reconcile_check_operations=ReconcileOperations(operations),
            product_events_url=text("PRODUCT_EVENTS_URL", ""),
            product_signing_secret=env.get("PRODUCT_SIGNING_SECRET", ""),
            product_veto_url=text("PRODUCT_VETO_URL", ""),
            product_veto_timeout_seconds=number("PRODUCT_VETO_TIMEOUT_SECONDS", defaults.product_veto_timeout_seconds),
            product_veto_default=VetoDefault(veto_default),
            product_retry_max_seconds=number("PRODUCT_RETRY_MAX_SECONDS", defaults.product_retry_max_seconds),
            ops_api_key=env.get("OPS_API_KEY", "").strip(),
            log_level=level("LOG_LEVEL", defaults.log_level),
            library_log_level=level("LIBRARY_LOG_LEVEL", defaults.library_log_level),
            log_sink=LogSink(sink),
            applicationinsights_connection_string=text("APPLICATIONINSIGHTS_CONNECTION_STRING", ""),
        )

    def to_env(self, *, secret: bool = False) -> dict[str, str]:
        """The inverse of `from_env`: these settings as environment variables.

        Without the client secret unless asked: the local stack publishes the rest in its
        stack.json so the CLI can build the same worker (the secret stays in sandbox.json).
        """
        env = {
            "MARKETPLACE_TENANT_ID": self.tenant_id,
            "MARKETPLACE_CLIENT_ID": self.client_id,
            "MARKETPLACE_CREDENTIAL": self.marketplace_credential.value,
            "AZURE_CLIENT_ID": self.managed_identity_client_id,
            "MARKETPLACE_API_URL": self.marketplace_api_url,
            "MARKETPLACE_AUTHORITY_HOST": self.authority_host,
            "MARKETPLACE_SCOPE": self.marketplace_scope,
            "MARKETPLACE_AUTHORITY_CA_BUNDLE": self.authority_ca_bundle,
            "WEBHOOK_OPENID_METADATA_URL": self.openid_metadata_url,
            "WEBHOOK_AUTH": self.webhook_auth.value,
            "STORAGE_CONNECTION_STRING": self.storage_connection_string,
            "STORAGE_TABLE_ENDPOINT": self.storage_table_endpoint,
            "TABLE_PREFIX": self.table_prefix,
            "SERVICEBUS_CONNECTION_STRING": self.servicebus_connection_string,
            "SERVICEBUS_NAMESPACE": self.servicebus_namespace,
            "SERVICEBUS_QUEUE": self.servicebus_queue,
            "LOCAL_QUEUE_PATH": self.local_queue_path,
            "WEBHOOK_ENQUEUE_DELAY_SECONDS": f"{self.enqueue_delay_seconds:g}",
            "WEBHOOK_API_TIMEOUT_SECONDS": f"{self.webhook_api_timeout_seconds:g}",
            "MARKETPLACE_API_TIMEOUT_SECONDS": f"{self.api_timeout_seconds:g}",
            "MARKETPLACE_API_MAX_ATTEMPTS": str(self.api_max_attempts),
            "RECONCILE_SCHEDULE": self.reconcile_schedule,
            "RECONCILE_STUCK_AFTER_HOURS": f"{self.reconcile_stuck_after_hours:g}",
            "RECONCILE_SETTLE_SECONDS": f"{self.reconcile_settle_seconds:g}",
            "RECONCILE_CHECK_OPERATIONS": self.reconcile_check_operations.value,
            "PRODUCT_EVENTS_URL": self.product_events_url,
            "PRODUCT_VETO_URL": self.product_veto_url,
            "PRODUCT_VETO_TIMEOUT_SECONDS": f"{self.product_veto_timeout_seconds:g}",
            "PRODUCT_VETO_DEFAULT": self.product_veto_default.value,
            "PRODUCT_RETRY_MAX_SECONDS": f"{self.product_retry_max_seconds:g}",
            "LOG_LEVEL": self.log_level,
            "LIBRARY_LOG_LEVEL": self.library_log_level,
            "LOG_SINK": self.log_sink.value,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": self.applicationinsights_connection_string,
        }
        if secret:
            env["MARKETPLACE_CLIENT_SECRET"] = self.client_secret
            env["PRODUCT_SIGNING_SECRET"] = self.product_signing_secret
            env["OPS_API_KEY"] = self.ops_api_key
        return {name: value for name, value in env.items() if value}

    def __repr__(self) -> str:  # never print the secret
        return f"Settings(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, api={self.marketplace_api_url!r})"
