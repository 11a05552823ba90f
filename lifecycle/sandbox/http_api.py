"""The Fulfillment API v2 over plain HTTP on loopback, base path `/api`.

Each request goes through, in order: the next matching injected fault (a delay, an
error status with `Retry-After`, or both), the bearer token (RS256, issued by the Entra
stand-in, `aud` = the API's app id; else 401; another app's token: 403), `api-version` (missing -> 400
ApiVersionUnspecified, other -> 400 UnsupportedApiVersion), then the route
(`lifecycle.sandbox.routes`). `x-ms-requestid` and `x-ms-correlationid` are echoed, or
generated when absent. Error bodies vary in shape on purpose, as Microsoft's do: a
publisher must never parse them strictly. Paths under `/sandbox/` are the control
surface (`lifecycle.sandbox.control`), not Microsoft's: no auth, no faults.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import jwt
import structlog

from lifecycle.sandbox import control
from lifecycle.sandbox.entra import Entra
from lifecycle.sandbox.errors import SandboxError
from lifecycle.sandbox.faults import Fault
from lifecycle.sandbox.httpd import JsonHandler, LoopbackServer
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.sandbox.routes import API_VERSION, Request, Response, dispatch
from lifecycle.sandbox.webhook import WebhookSender

BASE_PATH = "/api"

log = structlog.get_logger("lifecycle.sandbox.api")


def error_body(error: SandboxError) -> object:
    """Microsoft's error bodies are free-form; each status gets one of the shapes seen."""
    if error.status == 404:
        return {"message": error.message, "target": error.target, "code": error.code}
    if error.status == 409:
        return {"Error": {"Code": error.code, "Message": error.message}}
    if error.status in (401, 403):
        return {"statusCode": error.status, "message": error.message}
    return {"error": {"code": error.code, "message": error.message, "target": error.target, "details": []}}


def fault_response(fault: Fault) -> tuple[bytes, str]:
    """The body of an injected error: JSON for 429/500, a gateway's HTML page for the rest."""
    status = fault.status or 500
    if fault.body is not None:
        return fault.body.encode(), "application/json"
    if status >= 502:
        return f"<html><body><h1>{status} Service Unavailable</h1></body></html>".encode(), "text/html"
    if status == 429:
        wait = fault.retry_after_header or "1"
        data: object = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."}
    else:
        data = {"error": {"code": "InternalServerError", "message": "Injected fault"}}
    return json.dumps(data).encode(), "application/json"


class ApiHandler(JsonHandler):
    """One request of the Fulfillment API; `marketplace`, `entra`, `api_url` bound by `serve_api`."""

    marketplace: ClassVar[Marketplace]
    entra: ClassVar[Entra]
    webhooks: ClassVar[WebhookSender | None]
    api_url: ClassVar[str]

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.read_body()  # always drain it, so a kept-alive connection stays in step
        url = urlsplit(self.path)
        ids = {
            "x-ms-requestid": self.headers.get("x-ms-requestid") or str(uuid.uuid4()),
            "x-ms-correlationid": self.headers.get("x-ms-correlationid") or str(uuid.uuid4()),
        }
        if url.path.startswith(control.PREFIX + "/"):
            self._control(url.path[len(control.PREFIX) :], body, ids)
            return
        fault = self.marketplace.faults.take(self.command, url.path)
        if fault is not None:
            if fault.delay > 0:
                time.sleep(fault.delay)  # long enough, and the client has timed out already
            if fault.status is not None:
                payload, content_type = fault_response(fault)
                headers = dict(ids)
                if fault.retry_after_header is not None:
                    headers["Retry-After"] = fault.retry_after_header
                self.send_body(fault.status, payload, content_type, headers)
                return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        self._answer(lambda: self._serve(url.path, query, body), ids)

    def _answer(self, serve: Callable[[], Response], ids: dict[str, str]) -> None:
        try:
            response = serve()
        except SandboxError as error:
            response = Response(error.status, error_body(error))
        except Exception:
            # A sandbox bug must look like Microsoft's own failures (a 500), not a dropped connection.
            log.exception("sandbox API failed", method=self.command, path=self.path)
            response = Response(500, {"error": {"code": "InternalServerError", "message": "Unexpected error"}})
        self._respond(response, ids)

    def _respond(self, response: Response, ids: dict[str, str]) -> None:
        headers = {**ids, **response.headers}
        if response.body is None:
            self.send_body(response.status, b"", headers=headers)
        else:
            self.send_json(response.status, response.body, headers=headers)

    def _control(self, path: str, body: bytes, ids: dict[str, str]) -> None:
        controls = control.Controls(self.marketplace, self.entra, self.webhooks)
        request = Request(self.command, path, {}, {}, body, self.api_url)
        self._answer(lambda: control.control(controls, self.command, path, request.json()), ids)

    def _serve(self, path: str, query: dict[str, str], body: bytes) -> Response:
        if not (path == BASE_PATH or path.startswith(BASE_PATH + "/")):
            raise SandboxError(404, "NotFound", f"No resource at {path}")
        self._authenticate()
        version = query.get("api-version")
        if not version:
            raise SandboxError(400, "ApiVersionUnspecified", "The api-version query parameter is required.")
        if version != API_VERSION:
            raise SandboxError(400, "UnsupportedApiVersion", f"The api-version '{version}' is not supported.")
        request = Request(
            method=self.command,
            path=path[len(BASE_PATH) :],
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            api_url=self.api_url,
        )
        return dispatch(self.marketplace, request)

    def _authenticate(self) -> None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SandboxError(401, "Unauthorized", "Access denied due to missing or invalid bearer token.")
        try:
            claims = self.entra.verify_access_token(token.strip())
        except jwt.InvalidTokenError as error:
            raise SandboxError(401, "Unauthorized", f"Access denied due to invalid token: {error}") from None
        if claims.get("appid") != self.entra.client_id:
            # A valid token of another app: the offer's technical configuration names a different one.
            raise SandboxError(403, "Forbidden", "The caller is not authorized to perform this operation.")


def serve_api(
    marketplace: Marketplace, entra: Entra, port: int = 0, webhooks: WebhookSender | None = None
) -> LoopbackServer:
    """Start the API (and the control surface) on 127.0.0.1; the API base is `url` + `/api`."""
    bindings = {"marketplace": marketplace, "entra": entra, "webhooks": webhooks, "api_url": ""}
    handler: type[ApiHandler] = type("BoundApiHandler", (ApiHandler,), bindings)
    server = LoopbackServer(handler, port)
    handler.api_url = server.url + BASE_PATH  # known only once the port is bound
    server.start()
    return server
