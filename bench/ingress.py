"""Ingress: signed webhooks at concurrency 50 against the local server, beside a bare baseline.

Ours: the local HTTP server with the shared webhook handler (JWT check against keys
fetched from the sandbox's Entra, lenient parsing, the delivery record in Azurite, the
change policy for ChangeQuantity, enqueue on the durable local queue). The baseline: the
same server class, a handler doing only a JWT check with the same cached key, one table
write and one enqueue. Both get the same bodies, 80% notify-only and 20% ChangeQuantity
on subscriptions known locally, in alternating rounds, from one asyncio client.

Goals: our throughput >= 0.7 x the baseline's; our p99 under 1 s (the window is 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import jwt

from bench.report import write
from lifecycle.bootstrap import build
from lifecycle.domain.records import Commit
from lifecycle.entrypoints import http
from lifecycle.local.azurite import Azurite, find_executable
from lifecycle.local.queue import LocalQueue
from lifecycle.local.server import LocalServer, Route
from lifecycle.logs import configure
from lifecycle.parsing import parse_subscription
from lifecycle.ports import QueueMessage
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings
from lifecycle.store import keys, table_service

ROOT = Path(__file__).resolve().parent.parent
EVENTS = 5_000
CONCURRENCY = 50
SUBSCRIPTIONS = 250
TICK = 0.01  # the client's loop-lag probe


def run(events: int = EVENTS, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    configure("INFO", json=True, stream=io.StringIO())
    with Azurite(find_executable(ROOT)) as azurite, Sandbox(auto_accept_seconds=None) as sandbox, \
            tempfile.TemporaryDirectory() as scratch:
        prefix = "ingress" + uuid.uuid4().hex[:8]
        env = sandbox.settings_env() | {"STORAGE_CONNECTION_STRING": azurite.connection_string,
                                        "TABLE_PREFIX": prefix, "LOCAL_QUEUE_PATH": f"{scratch}/ours.sqlite"}
        worker = build(Settings.from_env(env))
        subscriptions = [sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)[0]
                         for _ in range(SUBSCRIPTIONS)]
        for subscription in subscriptions:
            worker.store.commit(Commit(subscription=parse_subscription(subscription), expected=None))
        bodies = _bodies(subscriptions, events)
        token = sandbox.entra.webhook_token(lifetime=3600)
        ours = LocalServer([Route("POST", "marketplace/webhook", lambda req: http.webhook(req, worker.webhook))],
                           port=0).start()
        bare = _Baseline(azurite.connection_string, prefix, Path(scratch) / "bare.sqlite", sandbox)
        baseline = LocalServer([Route("POST", "marketplace/webhook", bare.handle)], port=0).start()
        try:
            results: dict[str, list[float]] = {"ours": [], "baseline": []}
            lags: dict[str, list[float]] = {"ours": [], "baseline": []}
            elapsed = {"ours": 0.0, "baseline": 0.0}
            statuses: dict[str, dict[int, int]] = {"ours": {}, "baseline": {}}
            half = len(bodies) // 2
            for round_bodies, order in ((bodies[:half], ("ours", "baseline")), (bodies[half:], ("baseline", "ours"))):
                for name in order:
                    server = ours if name == "ours" else baseline
                    url = f"{server.url}/api/marketplace/webhook"
                    latencies, seconds, codes, loop_lags = _load_from_another_process(
                        url, token, round_bodies, concurrency, Path(scratch))
                    results[name] += latencies
                    lags[name] += loop_lags
                    elapsed[name] += seconds
                    for code, count in codes.items():
                        statuses[name][code] = statuses[name].get(code, 0) + count
        finally:
            ours.stop()
            baseline.stop()
            bare.close()
    return _report(results, elapsed, statuses, lags, concurrency)


def _bodies(subscriptions: list[dict[str, Any]], events: int) -> list[bytes]:
    rng = random.Random(7)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    bodies = []
    for _ in range(events):
        subscription = rng.choice(subscriptions)
        payload: dict[str, Any] = {
            "id": str(uuid.uuid4()), "activityId": str(uuid.uuid4()), "publisherId": "contoso",
            "offerId": subscription["offerId"], "planId": subscription["planId"], "quantity": None,
            "subscriptionId": subscription["id"], "timeStamp": now, "operationRequestSource": "Azure",
            "subscription": subscription, "purchaseToken": None,
        }
        if rng.random() < 0.2:
            payload |= {"action": "ChangeQuantity", "status": "InProgress", "quantity": rng.randint(1, 10)}
        else:
            payload |= {"action": rng.choice(["Suspend", "Renew", "Unsubscribe"]), "status": "Succeeded"}
        bodies.append(json.dumps(payload).encode())
    return bodies


def _load_from_another_process(
    url: str, token: str, bodies: list[bytes], concurrency: int, scratch: Path
) -> tuple[list[float], float, dict[int, int], list[float]]:
    """The client in its own process: in ours it would share the servers' GIL and skew both."""
    job = scratch / "load.json"
    job.write_text(json.dumps({"url": url, "token": token, "concurrency": concurrency,
                               "bodies": [b.decode() for b in bodies]}))
    out = subprocess.run([sys.executable, "-m", "bench.ingress", str(job)], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    result = json.loads(out.stdout)
    codes = {int(k): v for k, v in result["codes"].items()}
    return result["latencies"], result["seconds"], codes, result["loop_lags"]


def _client_main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    bodies = [b.encode() for b in job["bodies"]]
    latencies, seconds, codes, lags = asyncio.run(_load(job["url"], job["token"], bodies, job["concurrency"]))
    print(json.dumps({"latencies": latencies, "seconds": seconds, "codes": codes, "loop_lags": lags}))


async def _load(
    url: str, token: str, bodies: list[bytes], concurrency: int
) -> tuple[list[float], float, dict[int, int], list[float]]:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    latencies: list[float] = []
    codes: dict[int, int] = {}
    pending = iter(bodies)
    lags: list[float] = []
    done = asyncio.Event()

    async def sender(client: httpx.AsyncClient) -> None:
        for body in pending:
            start = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1

    async def ticker() -> None:
        # How late the client's own loop wakes: a late loop reads answers late, and its
        # lateness would be counted as the server's.
        while not done.is_set():
            due = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - due)

    # One client, one kept-alive connection per sender, as each of the marketplace's concurrent
    # deliveries is its own: a shared pool left requests waiting for a free connection while
    # others idled past their keep-alive (seconds of "latency" spent before a byte was sent,
    # for any server). All made before the clock starts: a client loads its TLS context when
    # made, about 40 ms that blocks the loop, and made by each sender as it started, the
    # first requests' answers waited unread for the other 49 (2 s of the first "latencies").
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=60.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=30.0))
                   for _ in range(concurrency)]
        start = time.perf_counter()
        ticking = asyncio.create_task(ticker())
        await asyncio.gather(*(sender(client) for client in clients))
        seconds = time.perf_counter() - start
        done.set()
        await ticking
    return latencies, seconds, codes, lags


class _Baseline:
    """JWT check with a cached key, one table write, one enqueue: nothing of ours."""

    def __init__(self, connection_string: str, prefix: str, queue_path: Path, sandbox: Sandbox) -> None:
        self._service = table_service.from_connection_string(connection_string)  # built as our store's
        self._table = self._service.create_table_if_not_exists(f"{prefix}bare")
        self._queue = LocalQueue(queue_path)
        verify = sandbox.ca_bundle
        metadata = httpx.get(sandbox.openid_metadata_url, verify=verify).json()
        keys = httpx.get(metadata["jwks_uri"], verify=verify).json()["keys"]
        self._keys = {k["kid"]: jwt.PyJWK.from_dict({**k, "alg": "RS256"}).key for k in keys}
        self._audience = sandbox.client_id

    def handle(self, req: func.HttpRequest) -> func.HttpResponse:
        token = (req.headers.get("authorization") or "").partition(" ")[2]
        kid = jwt.get_unverified_header(token)["kid"]
        jwt.decode(token, self._keys[kid], algorithms=["RS256"], audience=self._audience)
        body = req.get_body()
        payload = json.loads(body)
        self._table.upsert_entity({"PartitionKey": payload["subscriptionId"],
                                   "RowKey": keys.delivery_row(payload["id"]), "Payload": body.decode()})
        self._queue.send(QueueMessage(session_id=payload["subscriptionId"], message_id=payload["id"],
                                      body=body.decode()))
        return func.HttpResponse('{"status": "accepted"}', status_code=200, mimetype="application/json")

    def close(self) -> None:
        self._service.close()


def _report(results: dict[str, list[float]], elapsed: dict[str, float], statuses: dict[str, dict[int, int]],
            lags: dict[str, list[float]], concurrency: int) -> dict[str, Any]:
    def summary(name: str) -> dict[str, Any]:
        ordered = sorted(results[name])
        return {
            "requests": len(ordered),
            "requests_per_second": round(len(ordered) / elapsed[name], 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "client_loop_lag_p99_ms": round(statistics.quantiles(lags[name], n=100)[98] * 1000, 1),
            "statuses": {str(k): v for k, v in sorted(statuses[name].items())},
        }

    ours, base = summary("ours"), summary("baseline")
    ratio = ours["requests_per_second"] / base["requests_per_second"]
    figures = {"concurrency": concurrency, "ours": ours, "baseline": base, "throughput_ratio": round(ratio, 3)}
    write("ingress", figures, [
        ("requests (each side)", f"{ours['requests']:,} at concurrency {concurrency}", ""),
        ("ours requests/s", f"{ours['requests_per_second']:,.1f}", ""),
        ("baseline requests/s", f"{base['requests_per_second']:,.1f}", ""),
        ("throughput ratio", f"{ratio:.2f}", ">= 0.70"),
        ("ours p50 / p99 / max", f"{ours['p50_ms']} / {ours['p99_ms']} / {ours['max_ms']} ms", "p99 < 1000 ms"),
        ("baseline p50 / p99 / max", f"{base['p50_ms']} / {base['p99_ms']} / {base['max_ms']} ms", ""),
        ("client loop lag p99 ours / baseline", f"{ours['client_loop_lag_p99_ms']} / "
                                                f"{base['client_loop_lag_p99_ms']} ms", ""),
        ("answers ours / baseline", f"{ours['statuses']} / {base['statuses']}", ""),
    ])
    return figures


if __name__ == "__main__":
    _client_main(sys.argv[1])
