"""The local server: real HTTP over loopback into the shared handlers, with a worker on fakes."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import azure.functions as func
import httpx
import pytest
from structlog.testing import capture_logs

from lifecycle.local.server import LocalServer, Route
from lifecycle.local.stack import worker_routes
from lifecycle.services.ingress import MAX_BODY_BYTES
from tests.functions import Stack, stack


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    with capture_logs():  # request lines are logged by server threads, after the client has its answer
        yield


@pytest.fixture
def env() -> Stack:
    return stack()


@pytest.fixture
def server(env: Stack) -> Iterator[LocalServer]:
    running = LocalServer(worker_routes(env.worker), port=0, timeout=0.5).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as http_client:
        yield http_client


def raw(server: LocalServer, request: bytes, *, wait: float = 5.0) -> bytes:
    """Send bytes as they are, return everything the server answers before it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as connection:
        connection.sendall(request)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def test_health_answers_through_the_shared_handler(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["content-type"].startswith("application/json")


def test_a_failing_health_check_answers_503(env: Stack) -> None:
    def local_queue() -> None:
        raise OSError("disk gone")

    server = LocalServer(worker_routes(env.worker, local_queue), port=0).start()
    try:
        response = httpx.get(f"{server.url}/api/health", trust_env=False)
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.json()["failed"] == ["local_queue: OSError"]


def test_a_webhook_is_accepted_and_enqueued(env: Stack, client: httpx.Client) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.suspend(subscription["id"], deliver=False)
    payload = env.marketplace.webhook_payload(operation["id"])

    response = client.post("/api/marketplace/webhook", json=payload)

    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    assert [m.message_id for m in env.queue.sent] == [operation["id"]]


def test_a_change_above_the_plans_maximum_is_refused_within_the_request(env: Stack, client: httpx.Client) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    payload = env.marketplace.webhook_payload(operation["id"]) | {"quantity": 11}  # team allows 1-10

    response = client.post("/api/marketplace/webhook", json=payload)

    assert response.status_code == 400
    assert "outside" in response.json()["error"]
    assert env.queue.sent == []


def test_an_unknown_route_is_404(client: httpx.Client) -> None:
    assert client.get("/api/nothing-here").status_code == 404
    assert client.get("/").status_code == 404


def test_a_known_route_with_another_method_is_405_and_says_which_are_allowed(client: httpx.Client) -> None:
    response = client.get("/api/marketplace/webhook")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_oversized_body_is_refused_with_413_before_it_is_sent(env: Stack) -> None:
    # Ten gigabytes announced and not one byte sent: the answer comes from the headers alone.
    patient = LocalServer(worker_routes(env.worker), port=0, timeout=6.0).start()
    try:
        started = time.monotonic()
        answer = raw(patient, b"POST /api/marketplace/webhook HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 10000000000\r\n\r\n")
        elapsed = time.monotonic() - started
    finally:
        patient.stop()
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in answer
    assert elapsed < 3  # well below the 6-second socket timeout: no body was waited for


def test_a_chunked_body_is_read(env: Stack, client: httpx.Client) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.renew(subscription["id"], deliver=False)
    body = json.dumps(env.marketplace.webhook_payload(operation["id"])).encode()

    response = client.post("/api/marketplace/webhook", content=iter([body[:10], body[10:]]))  # an iterator: chunked

    assert response.status_code == 200


def test_a_chunked_body_over_the_cap_is_413(server: LocalServer) -> None:
    size = MAX_BODY_BYTES + 1
    request = b"POST /api/marketplace/webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw(server, request + f"{size:x}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_body_that_stops_arriving_gets_408_after_the_socket_timeout(server: LocalServer) -> None:
    started = time.monotonic()
    answer = raw(server, b"POST /api/marketplace/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\"")
    assert answer.startswith(b"HTTP/1.1 408")
    assert 0.4 < time.monotonic() - started < 3


def test_a_malformed_content_length_is_400(server: LocalServer) -> None:
    answer = raw(server, b"POST /api/marketplace/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


def test_route_parameters_and_query_reach_the_handler() -> None:
    seen: list[func.HttpRequest] = []

    def handler(request: func.HttpRequest) -> func.HttpResponse:
        seen.append(request)
        return func.HttpResponse("ok")

    server = LocalServer([Route("GET", "subscriptions/{id}/events", handler)], port=0).start()
    try:
        response = httpx.get(f"{server.url}/api/subscriptions/%7Babc%7D/events?top=5", trust_env=False)
    finally:
        server.stop()
    assert (response.status_code, response.text) == (200, "ok")
    # Decoded, as the Functions host hands them over.
    assert (dict(seen[0].route_params), dict(seen[0].params)) == ({"id": "{abc}"}, {"top": "5"})


def test_a_crashing_handler_answers_500_and_the_server_keeps_serving() -> None:
    def handler(request: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("bug")

    server = LocalServer([Route("GET", "boom", handler)], port=0).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as http_client:
            assert [http_client.get("/api/boom").status_code for _ in range(2)] == [500, 500]
    finally:
        server.stop()


def test_kept_alive_answers_are_not_held_back_by_nagle(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # With Nagle on, each answer on a kept-alive connection waits ~40 ms for the client's delayed
    # ACK (measured in `make bench`): the accepted socket must have TCP_NODELAY set.
    seen: list[int] = []
    original = socketserver.StreamRequestHandler.setup

    def setup(handler: socketserver.StreamRequestHandler) -> None:
        original(handler)
        seen.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(socketserver.StreamRequestHandler, "setup", setup)
    with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as fresh:
        assert [fresh.get("/api/health").status_code for _ in range(3)] == [200] * 3
    assert seen
    assert all(seen)


def wait_until(condition: Callable[[], bool], patience: float = 5.0) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.005)


class Gate:
    """A handler that records which request it ran and holds every one until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.ran: list[str] = []
        self.active = 0
        self.lock = threading.Lock()

    def __call__(self, request: func.HttpRequest) -> func.HttpResponse:
        with self.lock:
            self.active += 1
            self.ran.append(request.route_params["name"])
        self.opened.wait(10)
        with self.lock:
            self.active -= 1
        return func.HttpResponse("ok")


def get_in_background(server: LocalServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=httpx.get, args=(f"{server.url}/api/gate/{name}",), kwargs={"trust_env": False})
    thread.start()
    return thread


def test_handlers_run_in_the_order_their_requests_were_read() -> None:
    gate = Gate()
    server = LocalServer([Route("GET", "gate/{name}", gate)], port=0, workers=1).start()
    try:
        clients = [get_in_background(server, "first")]
        wait_until(lambda: gate.active == 1)
        for number, name in enumerate(["a", "b", "c", "d"], start=1):
            clients.append(get_in_background(server, name))

            def queued(number: int = number) -> bool:
                return server.waiting == number

            wait_until(queued)
        gate.opened.set()
        for client in clients:
            client.join(10)
    finally:
        server.stop()
    assert gate.ran == ["first", "a", "b", "c", "d"]


def test_no_more_handlers_run_at_once_than_there_are_workers() -> None:
    gate = Gate()
    server = LocalServer([Route("GET", "gate/{name}", gate)], port=0, workers=2).start()
    try:
        clients = [get_in_background(server, str(n)) for n in range(8)]
        wait_until(lambda: server.waiting == 6)
        assert gate.active == 2
        gate.opened.set()
        for client in clients:
            client.join(10)
    finally:
        server.stop()
    assert sorted(gate.ran) == [str(n) for n in range(8)]


def test_a_stalled_body_does_not_hold_a_worker() -> None:
    server = LocalServer([Route("POST", "echo", lambda request: func.HttpResponse(request.get_body()))],
                         port=0, workers=1, timeout=10).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as stalled:
            stalled.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\"")
            response = httpx.post(f"{server.url}/api/echo", content=b"whole", trust_env=False, timeout=5)
            stalled.setblocking(False)
            with pytest.raises(BlockingIOError):
                stalled.recv(1)  # still unanswered: it waits for its body in its own thread
    finally:
        server.stop()
    assert (response.status_code, response.text) == (200, "whole")
