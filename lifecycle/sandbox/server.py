"""`Sandbox`: the whole marketplace side on loopback, for tests, `make run` and a person.

    with Sandbox(webhook_url="http://127.0.0.1:7071/api/marketplace/webhook") as sandbox:
        env = sandbox.settings_env()        # point the worker at it
        subscription, token = sandbox.marketplace.purchase("contoso-seats", "team", 3)
        operation = sandbox.marketplace.change_quantity(subscription["id"], 5)
        sandbox.webhooks.wait(operation["id"])

It starts the Entra stand-in (HTTPS, a certificate made for this sandbox: `ca_bundle`)
and the Fulfillment API (HTTP, `api_url`), both on 127.0.0.1 and on free ports unless
given, and wires the marketplace's changes to the webhook sender. Ids and the client
secret are random unless given.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from lifecycle.sandbox.clock import Clock
from lifecycle.sandbox.entra import Entra
from lifecycle.sandbox.entra_http import serve_entra
from lifecycle.sandbox.http_api import serve_api
from lifecycle.sandbox.httpd import LoopbackServer
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.sandbox.tls import self_signed
from lifecycle.sandbox.webhook import DEFAULT_RETRY_DELAYS, WebhookSender


class Sandbox:
    """The marketplace's side composed and served; a context manager that starts and stops it."""

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        publisher_id: str = "contoso",
        auto_accept_seconds: float | None = 10.0,
        page_size: int = 100,
        activation_delay_seconds: float = 0.0,
        api_port: int = 0,
        entra_port: int = 0,
        webhook_timeout: float = 10.0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        token_version: int = 2,
        clock: Clock | None = None,
    ) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = client_secret or secrets.token_urlsafe(30)
        self.marketplace = Marketplace(
            publisher_id=publisher_id,
            auto_accept_seconds=auto_accept_seconds,
            page_size=page_size,
            activation_delay_seconds=activation_delay_seconds,
            clock=clock,
        )
        self.entra = Entra(tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret)
        self.webhooks = WebhookSender(
            self.marketplace,
            self.entra,
            webhook_url,
            timeout=webhook_timeout,
            retry_delays=retry_delays,
            token_version=token_version,
        )
        self.marketplace.notifier = self.webhooks.submit
        self._ports = (api_port, entra_port)
        self._directory: Path | None = None
        self._api: LoopbackServer | None = None
        self._identity: LoopbackServer | None = None
        self._stopped = False

    def start(self) -> Sandbox:
        """Serve both endpoints; a stopped sandbox cannot start again (make a new one)."""
        if self._stopped:
            raise RuntimeError("this sandbox was stopped; create a new one")
        if self._api is not None:
            return self
        self._directory = Path(tempfile.mkdtemp(prefix="marketplace-sandbox-"))
        try:
            self._identity = serve_entra(self.entra, self_signed(self._directory), self._ports[1])
            self._api = serve_api(self.marketplace, self.entra, self._ports[0], self.webhooks)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop deliveries and both servers, and delete the certificate files."""
        self._stopped = True
        self.webhooks.close()
        for server in (self._api, self._identity):
            if server is not None:
                server.stop()
        self._api = self._identity = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    @property
    def api_url(self) -> str:
        """The Fulfillment API base, e.g. http://127.0.0.1:PORT/api."""
        return self._running(self._api).url + "/api"

    @property
    def api_open_connections(self) -> int:
        """Connections the API's server is serving now: a test waits on it for a client to be gone."""
        return self._running(self._api).open_connections

    @property
    def control_url(self) -> str:
        """The control surface for playing the marketplace, e.g. http://127.0.0.1:PORT/sandbox."""
        return self._running(self._api).url + "/sandbox"

    @property
    def authority_host(self) -> str:
        """The Entra stand-in, e.g. https://127.0.0.1:PORT (the authority is this + /tenant)."""
        return self._running(self._identity).url

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def openid_metadata_url(self) -> str:
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    @property
    def ca_bundle(self) -> str:
        """The PEM file to trust for the authority (the sandbox's self-signed certificate)."""
        if self._directory is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return str(self._directory / "sandbox-ca.pem")

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point the worker's settings at this sandbox."""
        return {
            "MARKETPLACE_TENANT_ID": self.tenant_id,
            "MARKETPLACE_CLIENT_ID": self.client_id,
            "MARKETPLACE_CLIENT_SECRET": self.client_secret,
            "MARKETPLACE_API_URL": self.api_url,
            "MARKETPLACE_AUTHORITY_HOST": self.authority_host,
            "MARKETPLACE_AUTHORITY_CA_BUNDLE": self.ca_bundle,
            "WEBHOOK_OPENID_METADATA_URL": self.openid_metadata_url,
        }

    @staticmethod
    def _running(server: LoopbackServer | None) -> LoopbackServer:
        if server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return server
