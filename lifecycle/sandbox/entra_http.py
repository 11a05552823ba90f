"""The Entra stand-in over HTTPS on loopback: metadata, keys and the token endpoint.

Paths as on login.microsoftonline.com, so MSAL (with instance discovery off) and any
OpenID client find what they expect:

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /{tenant}/discovery/v2.0/keys      (and the v1 /{tenant}/discovery/keys)
    POST /{tenant}/oauth2/v2.0/token        client credentials (secret in the form or Basic)
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from lifecycle.sandbox.entra import Entra, EntraError
from lifecycle.sandbox.httpd import JsonHandler, LoopbackServer
from lifecycle.sandbox.tls import CertificateFiles

_METADATA = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_KEYS = re.compile(r"^/([^/]+)/discovery(?:/v2\.0)?/keys$")
_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")


class EntraHandler(JsonHandler):
    """Routes requests to the `entra` set on the subclass made by `serve_entra`."""

    entra: ClassVar[Entra]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        for pattern, answer in ((_METADATA, self.entra.openid_configuration), (_KEYS, None)):
            match = pattern.match(path)
            if match is None:
                continue
            tenant = match.group(1)
            if not self.entra.knows(tenant):
                self._refuse(EntraError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found."))
                return
            self.send_json(200, answer(tenant) if answer else self.entra.jwks())
            return
        self.send_json(404, {"error": "not_found", "error_description": f"No endpoint at {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_body()
        match = _TOKEN.match(path)
        if match is None:
            self.send_json(404, {"error": "not_found", "error_description": f"No endpoint at {path}"})
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            self.send_json(200, self.entra.issue_token(match.group(1), form, self._basic_credentials()))
        except EntraError as error:
            self._refuse(error)

    def _basic_credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ("", "")
        return unquote(user), unquote(password)

    def _refuse(self, error: EntraError) -> None:
        self.send_json(error.status, error.body)


def serve_entra(entra: Entra, certificate: CertificateFiles, port: int = 0) -> LoopbackServer:
    """Start serving `entra` over HTTPS on 127.0.0.1; sets its `base_url`."""
    handler = type("BoundEntraHandler", (EntraHandler,), {"entra": entra})
    server = LoopbackServer(handler, port, certificate.server_context())
    entra.base_url = server.url
    server.start()
    return server
