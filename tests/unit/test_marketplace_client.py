"""HttpMarketplaceApi against httpx.MockTransport: headers, paging, errors and retries, no network."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import structlog

from lifecycle.domain.model import OperationStatus, Status
from lifecycle.errors import (
    InvalidPayload,
    MarketplaceBadRequest,
    MarketplaceConflict,
    MarketplaceForbidden,
    MarketplaceNotFound,
    MarketplaceRejected,
    MarketplaceUnavailable,
)
from lifecycle.marketplace import (
    API_VERSION,
    HttpMarketplaceApi,
    MsalTokenProvider,
    RetryPolicy,
    StaticTokenProvider,
    parse_retry_after,
    set_testing,
)
from lifecycle.settings import Settings, SettingsError

BASE = "https://marketplace.test/api"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Records requests and sleeps; answers from a script of responses (or exceptions)."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def api(self, attempts: int = 4, tokens: Any = None) -> HttpMarketplaceApi:
        policy = RetryPolicy(max_attempts=attempts, base_delay=1.0, max_delay=8.0, max_retry_after=30.0,
                             sleep=self.sleeps.append, random=lambda: 0.5)
        return HttpMarketplaceApi(BASE, tokens or StaticTokenProvider("tok-123"),
                                  http=httpx.Client(transport=httpx.MockTransport(self)), retry=policy)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def ok(body: object = None, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers) if body is not None else httpx.Response(status,
                                                                                                     headers=headers)


def subscription_json(**fields: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "offerId": "offer", "planId": "gold", "quantity": "",
            "saasSubscriptionStatus": " Subscribed ", **fields}


def accepted(location: str) -> httpx.Response:
    return httpx.Response(202, headers={"Operation-Location": location})


@pytest.fixture(autouse=True)
def _real_pauses() -> Iterator[None]:
    previous = set_testing(False)  # these tests inspect the recorded sleeps themselves
    yield
    set_testing(previous)


# --- every request -------------------------------------------------------------------------

def test_every_call_carries_api_version_bearer_content_type_and_ids() -> None:
    rec = Recorder(ok(subscription_json(id="s1")))
    rec.api().get_subscription("s1")
    request = rec.requests[0]
    assert request.url.params["api-version"] == API_VERSION
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["content-type"] == "application/json"
    assert uuid.UUID(request.headers["x-ms-requestid"])
    assert uuid.UUID(request.headers["x-ms-correlationid"])


def test_each_attempt_gets_a_new_request_id_and_keeps_the_correlation_id() -> None:
    rec = Recorder(ok(status=503), ok(status=503), ok(subscription_json(id="s1")))
    rec.api().get_subscription("s1")
    assert len({r.headers["x-ms-requestid"] for r in rec.requests}) == 3
    assert len({r.headers["x-ms-correlationid"] for r in rec.requests}) == 1


def test_each_logical_call_gets_its_own_correlation_id_unless_one_is_given() -> None:
    rec = Recorder(ok(subscription_json(id="s1")))
    api = rec.api()
    api.get_subscription("s1")
    api.get_subscription("s1")
    api.correlated("activity-7").get_subscription("s1")
    ids = [r.headers["x-ms-correlationid"] for r in rec.requests]
    assert ids[0] != ids[1]
    assert ids[2] == "activity-7"


def test_ids_in_the_path_are_one_encoded_segment() -> None:
    rec = Recorder(ok(subscription_json(id="a/b?c")))
    rec.api().get_subscription("a/b?c")
    assert rec.requests[0].url.raw_path.startswith(b"/api/saas/subscriptions/a%2Fb%3Fc?")


def test_the_log_names_request_correlation_and_subscription_ids_but_never_the_token() -> None:
    rec = Recorder(ok(status=500), ok(subscription_json(id="s1")))
    with structlog.testing.capture_logs() as logs:
        rec.api().get_subscription("s1")
    assert [line["event"] for line in logs] == ["marketplace.retry", "marketplace.call"]
    for line in logs:
        assert line["subscription_id"] == "s1"
        assert line["request_id"]
        assert line["correlation_id"]
        assert "tok-123" not in json.dumps(line, default=str)


# --- endpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "sent"),
    [("abc%2Bdef%2F%3D%3D", "abc+def/=="), ("a+b", "a+b"), ("already-plain", "already-plain"), ("x%2541", "x%41")],
)
def test_resolve_url_decodes_the_landing_page_token_exactly_once(raw: str, sent: str) -> None:
    rec = Recorder(ok({"id": "s1", "subscriptionName": "n", "offerId": "o", "planId": "p",
                       "subscription": subscription_json(id="s1")}))
    resolved = rec.api().resolve(raw)
    assert rec.requests[0].method == "POST"
    assert rec.requests[0].url.path == "/api/saas/subscriptions/resolve"
    assert rec.requests[0].headers["x-ms-marketplace-token"] == sent
    assert resolved.subscription_id == "s1"
    assert resolved.subscription.status is Status.SUBSCRIBED


@pytest.mark.parametrize(("quantity", "body"), [(None, {"planId": "gold"}), (7, {"planId": "gold", "quantity": 7})])
def test_activate_posts_the_plan_and_the_quantity_only_when_given(quantity: int | None, body: object) -> None:
    rec = Recorder(ok(status=200))
    rec.api().activate("s1", "gold", quantity)
    assert rec.requests[0].method == "POST"
    assert rec.requests[0].url.path == "/api/saas/subscriptions/s1/activate"
    assert rec.body() == body


def test_get_subscription_parses_leniently() -> None:
    rec = Recorder(ok(subscription_json(id="s1", quantity="12", extra={"new": "field"})))
    subscription = rec.api().get_subscription("s1")
    assert (subscription.id, subscription.quantity, subscription.status) == ("s1", 12, Status.SUBSCRIBED)


def test_list_available_plans_reads_the_plans() -> None:
    rec = Recorder(ok({"plans": [{"planId": "gold", "isPricePerSeat": True, "minQuantity": 5, "maxQuantity": "50"},
                                 {"planId": "silver"}]}))
    plans = rec.api().list_available_plans("s1")
    assert rec.requests[0].url.path == "/api/saas/subscriptions/s1/listAvailablePlans"
    assert [(p.plan_id, p.min_quantity, p.max_quantity) for p in plans] == [("gold", 5, 50), ("silver", None, None)]


@pytest.mark.parametrize(
    ("change", "body"),
    [(lambda api: api.change_plan("s1", "gold"), {"planId": "gold"}),
     (lambda api: api.change_quantity("s1", 9), {"quantity": 9})],
)
def test_changes_patch_exactly_one_field_and_return_the_operation_id(change: Any, body: object) -> None:
    rec = Recorder(accepted(f"{BASE}/saas/subscriptions/s1/operations/op-42?api-version={API_VERSION}"))
    assert change(rec.api()) == "op-42"
    assert rec.requests[0].method == "PATCH"
    assert rec.body() == body


@pytest.mark.parametrize(
    "location",
    ["/api/saas/subscriptions/s1/operations/op-42", "https://elsewhere/x/op-42/?a=b", "op-42"],
)
def test_the_operation_id_is_the_last_segment_of_operation_location(location: str) -> None:
    rec = Recorder(accepted(location))
    assert rec.api().delete_subscription("s1") == "op-42"
    assert rec.requests[0].method == "DELETE"


def test_a_202_without_operation_location_is_an_invalid_payload() -> None:
    rec = Recorder(ok(status=202))
    with pytest.raises(InvalidPayload, match="Operation-Location"):
        rec.api().change_plan("s1", "gold")


@pytest.mark.parametrize("wrapped", [True, False])
def test_list_operations_accepts_the_documented_object_and_a_bare_array(wrapped: bool) -> None:
    items = [{"id": "op-1", "action": "ChangePlan", "status": "InProgress", "planId": "gold"}]
    rec = Recorder(ok({"operations": items} if wrapped else items))
    (operation,) = rec.api().list_operations("s1")
    assert (operation.id, operation.subscription_id, operation.status) == ("op-1", "s1", OperationStatus.IN_PROGRESS)


def test_list_operations_with_an_empty_body_is_empty() -> None:
    assert Recorder(ok(status=200)).api().list_operations("s1") == []


def test_get_operation_reads_one_operation() -> None:
    rec = Recorder(ok({"id": "op-1", "subscriptionId": "s1", "action": "Reinstate", "status": "Succeeded",
                       "timeStamp": "2026-11-01T12:00:00.1234567Z"}))
    operation = rec.api().get_operation("s1", "op-1")
    assert rec.requests[0].url.path == "/api/saas/subscriptions/s1/operations/op-1"
    assert operation.status is OperationStatus.SUCCEEDED
    assert operation.timestamp == datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("success", "status"), [(True, "Success"), (False, "Failure")])
def test_update_operation_patches_success_or_failure(success: bool, status: str) -> None:
    rec = Recorder(ok(status=200))
    rec.api().update_operation("s1", "op-1", success=success)
    assert rec.requests[0].method == "PATCH"
    assert rec.requests[0].url.path == "/api/saas/subscriptions/s1/operations/op-1"
    assert rec.body() == {"status": status}


# --- paging --------------------------------------------------------------------------------

def pages_of(sizes: list[int], link: Callable[[int], str]) -> tuple[Handler, list[str]]:
    """A handler serving pages of the given sizes; page n links to page n+1 via `link(n+1)`."""
    ids = [str(uuid.uuid4()) for _ in range(sum(sizes))]

    def handler(request: httpx.Request) -> httpx.Response:
        index = int(request.url.params.get("continuationToken", "0"))
        start = sum(sizes[:index])
        body: dict[str, object] = {"subscriptions": [subscription_json(id=i) for i in ids[start:start + sizes[index]]]}
        if index + 1 < len(sizes):
            body["@nextLink"] = link(index + 1)
        return ok(body)

    return handler, ids


def test_list_subscriptions_follows_next_link_across_odd_page_sizes() -> None:
    handler, ids = pages_of([7, 3, 0, 1, 5], lambda n: f"{BASE}/saas/subscriptions?continuationToken={n}")
    rec = Recorder(handler)
    pages = list(rec.api().list_subscriptions())
    assert [len(p) for p in pages] == [7, 3, 1, 5]  # an empty page in the middle is skipped, not the end
    assert [s.id for page in pages for s in page] == ids
    assert all(r.url.params["api-version"] == API_VERSION for r in rec.requests)
    assert len({r.headers["x-ms-correlationid"] for r in rec.requests}) == 1


def test_a_relative_next_link_without_api_version_is_completed() -> None:
    handler, ids = pages_of([2, 2], lambda n: f"/api/saas/subscriptions?continuationToken={n}")
    rec = Recorder(handler)
    assert sum(len(page) for page in rec.api().list_subscriptions()) == len(ids)
    assert rec.requests[1].url.params["api-version"] == API_VERSION
    assert rec.requests[1].url.host == "marketplace.test"


@pytest.mark.parametrize("body", [None, {"subscriptions": []}, {"subscriptions": [], "@nextLink": ""}])
def test_an_empty_answer_means_no_subscriptions(body: object) -> None:
    assert list(Recorder(ok(body)).api().list_subscriptions()) == []


def test_pages_are_yielded_as_they_arrive() -> None:
    handler, _ = pages_of([1, 1, 1], lambda n: f"{BASE}/saas/subscriptions?continuationToken={n}")
    rec = Recorder(handler)
    next(rec.api().list_subscriptions())
    assert len(rec.requests) == 1


def test_a_next_link_to_another_host_is_refused() -> None:
    rec = Recorder(ok({"subscriptions": [subscription_json()], "@nextLink": "https://evil.test/api/saas/subscriptions"}))
    with pytest.raises(InvalidPayload, match="another host"):
        list(rec.api().list_subscriptions())
    assert len(rec.requests) == 1


def test_a_next_link_that_repeats_stops_the_listing() -> None:
    rec = Recorder(ok({"subscriptions": [subscription_json()], "@nextLink": f"{BASE}/saas/subscriptions"}))
    with pytest.raises(InvalidPayload, match="repeats"):
        list(rec.api().list_subscriptions())


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "error"),
    [(400, MarketplaceBadRequest), (403, MarketplaceForbidden), (404, MarketplaceNotFound),
     (409, MarketplaceConflict), (401, MarketplaceRejected), (422, MarketplaceRejected)],
)
def test_a_4xx_maps_to_its_error_and_is_never_retried(status: int, error: type[MarketplaceRejected]) -> None:
    rec = Recorder(ok({"error": {"code": "Nope", "message": "no"}}, status=status))
    with pytest.raises(error) as raised:
        rec.api().get_subscription("s1")
    assert type(raised.value) is error
    assert raised.value.status == status
    assert raised.value.request_id == rec.requests[0].headers["x-ms-requestid"]
    assert len(rec.requests) == 1
    assert rec.sleeps == []


def test_a_403_says_the_app_id_or_tenant_probably_do_not_match_the_offer() -> None:
    rec = Recorder(ok(status=403))
    with pytest.raises(MarketplaceForbidden, match="Technical configuration in Partner Center"):
        rec.api().resolve("t")


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"error": {"code": "EntityNotFound", "message": "No subscription"}}', "EntityNotFound: No subscription"),
     (b'{"Error": {"Code": "BadArgument", "Message": "planId is invalid"}}', "BadArgument: planId is invalid"),
     (b'{"code": "UnsupportedApiVersion", "message": "use 2018-08-31"}', "UnsupportedApiVersion: use 2018-08-31"),
     (b'{"error": "invalid plan"}', "invalid plan"),
     (b'{"errorMessage": "quantity out of range"}', "quantity out of range"),
     (b'{"something": "else"}', '{"something": "else"}'),
     (b"Plan change\n  not allowed", "Plan change not allowed"),
     (b"", "no details")],
)
def test_error_bodies_are_read_leniently(body: bytes, expected: str) -> None:
    rec = Recorder(httpx.Response(400, content=body))
    with pytest.raises(MarketplaceBadRequest) as raised:
        rec.api().change_plan("s1", "gold")
    assert str(raised.value).endswith(expected)


def test_a_huge_error_body_is_cut_short() -> None:
    rec = Recorder(httpx.Response(400, content=b"x" * 100_000))
    with pytest.raises(MarketplaceBadRequest) as raised:
        rec.api().get_subscription("s1")
    assert len(str(raised.value)) < 400


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b'{"id": "s1", "offerId', b"[]"])
@pytest.mark.parametrize("call", ["get_subscription", "get_operation", "list_available_plans"])
def test_a_success_body_that_is_not_a_json_object_is_transient(body: bytes, call: str) -> None:
    api = Recorder(httpx.Response(200, content=body)).api()
    with pytest.raises(MarketplaceUnavailable, match="HTTP 200 whose body is"):
        getattr(api, call)(*(("s1", "op1") if call == "get_operation" else ("s1",)))


def test_a_json_success_body_we_cannot_understand_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="subscriptions"):
        list(Recorder(ok({"subscriptions": "many"})).api().list_subscriptions())


@pytest.mark.parametrize("body", [{}, {"plans": None}])
def test_plans_answered_without_a_list_are_unreadable_not_an_empty_catalog(body: object) -> None:
    with pytest.raises(InvalidPayload, match="without a plans list"):
        Recorder(ok(body)).api().list_available_plans("s1")


# --- retries -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retried_until_success(status: int) -> None:
    rec = Recorder(ok(status=status), ok(status=status), ok(subscription_json(id="s1")))
    assert rec.api().get_subscription("s1").id == "s1"
    assert len(rec.requests) == 3


def test_backoff_is_exponential_with_full_jitter() -> None:
    rec = Recorder(ok(status=503))
    with pytest.raises(MarketplaceUnavailable):
        rec.api(attempts=6).get_subscription("s1")
    # random() == 0.5 picks the middle of windows 1, 2, 4, 8, 8 (capped at max_delay)
    assert rec.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("3600", 30.0), ("soon", 0.5)])
def test_retry_after_replaces_the_backoff_and_is_capped(header: str, expected: float) -> None:
    rec = Recorder(ok(status=429, **{"Retry-After": header}), ok(subscription_json(id="s1")))
    rec.api().get_subscription("s1")
    assert rec.sleeps == [expected]


def test_retry_after_zero_retries_at_once() -> None:
    rec = Recorder(ok(status=429, **{"Retry-After": "0"}), ok(subscription_json(id="s1")))
    rec.api().get_subscription("s1")
    assert len(rec.requests) == 2
    assert rec.sleeps == []


def test_retry_after_as_an_http_date_is_honoured() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    rec = Recorder(ok(status=503, **{"Retry-After": when}), ok(subscription_json(id="s1")))
    rec.api().get_subscription("s1")
    assert 17 <= rec.sleeps[0] <= 20


def test_after_the_last_attempt_the_marketplace_is_unavailable_with_its_status() -> None:
    rec = Recorder(ok(status=503))
    with pytest.raises(MarketplaceUnavailable) as raised:
        rec.api(attempts=3).get_subscription("s1")
    assert raised.value.status == 503
    assert len(rec.requests) == 3
    assert len(rec.sleeps) == 2  # no pause after the last attempt


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"),
     httpx.RemoteProtocolError("cut")],
)
def test_timeouts_and_connection_errors_are_retried(failure: Exception) -> None:
    rec = Recorder(failure, ok(subscription_json(id="s1")))
    assert rec.api().get_subscription("s1").id == "s1"
    assert len(rec.requests) == 2


def test_connection_errors_to_the_end_are_unavailable_without_a_status() -> None:
    rec = Recorder(httpx.ConnectError("refused"))
    with pytest.raises(MarketplaceUnavailable, match="ConnectError") as raised:
        rec.api(attempts=2).list_operations("s1")
    assert raised.value.status is None


class FlakyTokens:
    def __init__(self, *outcomes: str | Exception) -> None:
        self.outcomes = list(outcomes)

    def token(self) -> str:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_a_transient_token_failure_is_retried_like_the_call() -> None:
    rec = Recorder(ok(subscription_json(id="s1")))
    api = rec.api(tokens=FlakyTokens(MarketplaceUnavailable("authority down"), "tok-2"))
    api.get_subscription("s1")
    assert len(rec.sleeps) == 1
    assert rec.requests[0].headers["authorization"] == "Bearer tok-2"


def test_refused_credentials_are_not_retried() -> None:
    rec = Recorder(ok(subscription_json(id="s1")))
    api = rec.api(tokens=FlakyTokens(MarketplaceForbidden("bad secret", status=401), "never"))
    with pytest.raises(MarketplaceForbidden):
        api.get_subscription("s1")
    assert rec.requests == []


# --- the policy ----------------------------------------------------------------------------

def test_test_mode_turns_pauses_into_no_ops() -> None:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append)
    set_testing(True)
    policy.pause(5.0)
    set_testing(False)
    policy.pause(0.25)
    assert slept == [0.25]


def test_no_wait_policy_never_sleeps_but_keeps_its_attempts() -> None:
    policy = RetryPolicy.no_wait(max_attempts=2)
    previous = set_testing(False)  # the suite's test mode would hide a policy that sleeps
    try:
        pausing = threading.Thread(target=policy.pause, args=(3600.0,), daemon=True)
        pausing.start()
        pausing.join(timeout=10)  # a policy that slept would hold this thread for an hour
    finally:
        set_testing(previous)
    assert not pausing.is_alive()
    assert policy.max_attempts == 2


def test_backoff_stays_inside_the_full_jitter_window() -> None:
    low, high = RetryPolicy(base_delay=1, max_delay=10, random=lambda: 0.0), RetryPolicy(base_delay=1, max_delay=10,
                                                                                           random=lambda: 0.999)
    assert low.backoff(9) == 0.0
    assert 9.9 < high.backoff(9) < 10.0


def test_a_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (" 1.5 ", 1.5), ("", None), (None, None),
                                                 ("-1", None), ("nan", None), ("tomorrow", None)])
def test_retry_after_parsing(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_in_the_past_means_now() -> None:
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 01 Nov 2026 11:59:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("Sun, 01 Nov 2026 12:00:30 GMT", now=lambda: now) == 30.0


# --- the token provider (no network: a closed loopback port) -------------------------------

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_token_provider_needs_tenant_client_and_secret() -> None:
    with pytest.raises(SettingsError, match="MARKETPLACE_CLIENT_SECRET"):
        MsalTokenProvider(Settings(tenant_id="t", client_id="c"))


def test_an_unreachable_authority_is_transient(tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    settings = Settings(tenant_id="t", client_id="c", client_secret="s", api_timeout_seconds=2,
                        authority_host=f"https://127.0.0.1:{closed_port()}", authority_ca_bundle=str(bundle))
    with pytest.raises(MarketplaceUnavailable, match="could not be reached"):
        MsalTokenProvider(settings).token()
