"""The Table Storage clients look for a proxy in the environment only when one is set there.

`lifecycle.store.table_service`: the rule on its own, then the store's real HTTP against a
loopback stand-in for a proxy (it records each request line and answers 502), so what is
asserted is where the request went, not how the client was configured.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lifecycle.errors import StorageUnavailable
from lifecycle.local.azurite import connection_string
from lifecycle.sandbox.httpd import LoopbackServer
from lifecycle.sandbox.tls import self_signed
from lifecycle.store.table import TableSubscriptionStore
from lifecycle.store.table_service import environment_options

SKIPPED = {"use_env_settings": False}


def test_on_linux_without_proxy_or_ca_variables_the_environment_look_is_skipped() -> None:
    assert environment_options({"PATH": "/usr/bin", "FUNCTIONS_WORKER_RUNTIME": "python"}, "linux") == SKIPPED


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY", "no_proxy"])
def test_any_proxy_variable_keeps_the_sdk_reading_them(name: str) -> None:
    assert environment_options({name: "http://127.0.0.1:3128", "REQUESTS_CA_BUNDLE": "/ca.pem"}, "linux") == {}


def test_a_ca_bundle_variable_is_read_once_and_given_to_the_client_as_requests_would_pick_it() -> None:
    assert environment_options({"CURL_CA_BUNDLE": "/curl.pem"}, "linux") == SKIPPED | {"connection_verify": "/curl.pem"}
    both = {"CURL_CA_BUNDLE": "/curl.pem", "REQUESTS_CA_BUNDLE": "/requests.pem"}
    assert environment_options(both, "linux") == SKIPPED | {"connection_verify": "/requests.pem"}
    assert environment_options({"REQUESTS_CA_BUNDLE": ""}, "linux") == SKIPPED  # empty: requests ignores it too


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_where_system_settings_can_name_a_proxy_the_sdk_default_stands(platform: str) -> None:
    assert environment_options({}, platform) == {}


class _Proxy(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.requestline)
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET  # the store's first request creates its table

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recording", (_Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.upper() in {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}:
            monkeypatch.delenv(name)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _store(port: int) -> TableSubscriptionStore:
    return TableSubscriptionStore.from_connection_string(connection_string(port), retry_total=0,
                                                         connection_timeout=2)


@pytest.mark.usefixtures("no_proxy_variables")
def test_a_proxy_set_in_the_environment_carries_the_store_s_requests(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    port = _closed_port()
    with _store(port) as store, pytest.raises(StorageUnavailable):
        store.load("sub-1")
    assert len(seen) == 1
    assert seen[0].startswith(f"POST http://127.0.0.1:{port}/devstoreaccount1/Tables")


@pytest.mark.skipif(not environment_options({}), reason="the look is skipped on Linux only")
@pytest.mark.usefixtures("no_proxy_variables")
def test_without_proxy_variables_the_store_no_longer_reads_the_environment_per_request(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's default would read this variable at the request and go through the proxy.
    url, seen = proxy
    port = _closed_port()
    with _store(port) as store:
        monkeypatch.setenv("HTTP_PROXY", url)
        with pytest.raises(StorageUnavailable, match="unreachable"):
            store.load("sub-1")
    assert seen == []


@pytest.fixture
def tls_stand_in(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """A loopback HTTPS server with a certificate of its own (the one trust anchor), recording each request."""
    certificate = self_signed(tmp_path)
    seen: list[str] = []
    server = LoopbackServer(type("Recording", (_Proxy,), {"seen": seen}), ssl_context=certificate.server_context())
    server.start()
    try:
        yield server.port, certificate.cert_path, seen
    finally:
        server.stop()


def _tls_store(port: int) -> TableSubscriptionStore:
    endpoint = connection_string(port).replace("http://", "https://")
    return TableSubscriptionStore.from_connection_string(endpoint, retry_total=0, connection_timeout=2)


@pytest.mark.usefixtures("no_proxy_variables")
def test_a_ca_bundle_set_in_the_environment_is_trusted_without_the_per_request_look(
    tls_stand_in: tuple[int, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca_bundle, seen = tls_stand_in
    with _tls_store(port) as store, pytest.raises(StorageUnavailable):
        store.load("sub-1")
    assert seen == []  # the stand-in's certificate is trusted by nothing yet: no request got through

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
    with _tls_store(port) as store:
        assert environment_options()["connection_verify"] == str(ca_bundle)
        with pytest.raises(StorageUnavailable):  # the stand-in answers 502
            store.load("sub-1")
    assert len(seen) == 1
    assert seen[0].startswith("POST /devstoreaccount1/Tables")
