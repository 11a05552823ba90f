"""Alerts: off unless an address is given, and each one watching what the code really does.

The rules are only as good as the names in them: a metric that does not exist, a route that
moved or a log event the code no longer writes makes an alert that never fires. So these
read the names from the code (host.json, functions/, lifecycle/) rather than restating them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tests.infra import INFRA, ROOT, Param, evaluate, main, module

alerts = module("alerts")
ACTION_GROUP = alerts.resource("Microsoft.Insights/actionGroups")
METRIC_ALERTS = {
    name: resource["config"]
    for name, resource in alerts.section("resources").items()
    if resource["type"] == "Microsoft.Insights/metricAlerts"
}
LOG_ALERT = alerts.resource("Microsoft.Insights/scheduledQueryRules")
WEB_TEST = alerts.resource("Microsoft.Insights/webtests")
SOURCES = [*(ROOT / "lifecycle").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]


def accessor(value: Any) -> str:
    """`a.b.c` for pycep's nested property accessors."""
    if isinstance(value, str | Param):
        return value.name if isinstance(value, Param) else value
    operands = value["operator"]["operands"]
    assert value["operator"]["type"] == "property_accessor", value
    return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"


def call() -> dict[str, Any]:
    config: dict[str, Any] = main().section("modules")["alerts"]["config"]
    return config


def metric_criterion(resource: str) -> dict[str, Any]:
    criteria = METRIC_ALERTS[resource]["properties"]["criteria"]
    assert criteria["'odata.type'"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    (criterion,) = criteria["allOf"]
    return alerts.resolve(criterion)  # type: ignore[no-any-return]


def test_alerts_are_off_unless_an_address_is_given() -> None:
    assert main().section("parameters")["alertEmail"]["default"] == ""
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["alertEmail"]["value"] == "${ALERT_EMAIL}"
    condition = main().resolve(call()["condition"])
    assert evaluate(condition, {"alertEmail": ""}) is False  # no module: no action group, no rule, no test
    assert evaluate(condition, {"alertEmail": "ops@example.com"}) is True


def test_the_action_group_mails_the_address_given() -> None:
    assert call()["config"]["params"]["alertEmail"] == "alertEmail"
    properties = alerts.resolve(ACTION_GROUP["properties"])
    assert [receiver["emailAddress"] for receiver in properties["emailReceivers"]] == [Param("alertEmail")]
    assert properties["enabled"] is True
    assert len(properties["groupShortName"]) <= 12  # Azure's limit on the short name
    assert ACTION_GROUP["location"].lower() == "global"


def test_every_rule_notifies_the_action_group() -> None:
    for name, rule in METRIC_ALERTS.items():
        targets = [accessor(action["actionGroupId"]) for action in rule["properties"]["actions"]]
        assert targets == ["actionGroup.id"], name
    assert [accessor(target) for target in LOG_ALERT["properties"]["actions"]["actionGroups"]] == ["actionGroup.id"]


def test_every_rule_is_enabled_and_resolves_itself() -> None:
    for rule in [*METRIC_ALERTS.values(), LOG_ALERT]:
        assert rule["properties"]["enabled"] is True
        assert rule["properties"]["autoMitigate"] is True  # one mail per incident, and a "resolved" one


def test_rule_names_are_distinct_and_follow_the_naming_scheme() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text())
    params = call()["config"]["params"]
    assert params["actionGroupName"] == "${abbrs.actionGroup}${resourceToken}"
    assert params["alertRulePrefix"] == "${abbrs.alertRule}${resourceToken}"
    assert params["availabilityTestName"].startswith("${abbrs.availabilityTest}${resourceToken}")
    names = [rule["name"] for rule in [*METRIC_ALERTS.values(), LOG_ALERT]]
    assert len(set(names)) == len(names)
    token = "x" * 13  # uniqueString()
    for name in names:
        rendered = name.replace("${alertRulePrefix}", abbreviations["alertRule"] + token)
        assert re.fullmatch(r"[a-z0-9-]{1,64}", rendered), rendered


def test_dead_letters_on_the_lifecycle_queue_alert() -> None:
    rule = METRIC_ALERTS["deadLetters"]
    assert [accessor(scope) for scope in rule["properties"]["scopes"]] == ["namespace.id"]
    assert alerts.section("resources")["namespace"]["config"]["name"] == "serviceBusNamespaceName"
    criterion = metric_criterion("deadLetters")
    assert (criterion["metricNamespace"], criterion["metricName"]) == (
        "Microsoft.ServiceBus/namespaces", "DeadletteredMessages")
    assert criterion["dimensions"] == [
        {"name": "EntityName", "operator": "Include", "values": [Param("serviceBusQueueName")]}]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    params = call()["config"]["params"]
    assert accessor(params["serviceBusNamespaceName"]) == "serviceBus.outputs.name"
    assert accessor(params["serviceBusQueueName"]) == "serviceBus.outputs.queueName"


def test_http_5xx_from_the_function_app_alert() -> None:
    rule = METRIC_ALERTS["serverErrors"]
    assert [accessor(scope) for scope in rule["properties"]["scopes"]] == ["app.id"]
    criterion = metric_criterion("serverErrors")
    assert (criterion["metricNamespace"], criterion["metricName"]) == ("Microsoft.Web/sites", "Http5xx")
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Total", "GreaterThan", 0)
    assert accessor(call()["config"]["params"]["functionAppName"]) == "functionApp.outputs.name"


def test_the_availability_test_calls_the_health_route_anonymously_over_https() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    health = (ROOT / "functions" / "health.py").read_text()
    route = re.search(r'route="([^"]+)"', health)
    assert route
    assert "AuthLevel.ANONYMOUS" in health  # a test cannot carry a function key
    assert call()["config"]["params"]["healthUrl"] == (
        f"https://${{functionApp.outputs.defaultHostName}}/{host['extensions']['http']['routePrefix']}/{route.group(1)}")
    test = alerts.resolve(WEB_TEST)
    assert (test["kind"], test["properties"]["Kind"]) == ("standard", "standard")
    assert test["properties"]["Request"]["RequestUrl"] == Param("healthUrl")
    assert test["properties"]["Request"]["HttpVerb"] == "GET"
    assert test["properties"]["ValidationRules"]["ExpectedHttpStatusCode"] == 200
    assert test["properties"]["Enabled"] is True
    # Application Insights shows (and bills) a web test by this tag.
    assert {"'hidden-link:${applicationInsights.id}'": "Resource"} in test["tags"]["function"]["parameters"].values()


def test_the_availability_alert_fires_when_several_locations_fail() -> None:
    rule = METRIC_ALERTS["healthAlert"]
    criteria = rule["properties"]["criteria"]
    assert criteria["'odata.type'"] == "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
    assert (accessor(criteria["webTestId"]), accessor(criteria["componentId"])) == (
        "healthTest.id", "applicationInsights.id")
    assert sorted(accessor(scope) for scope in rule["properties"]["scopes"]) == ["applicationInsights.id",
                                                                                 "healthTest.id"]
    locations = alerts.resolve(WEB_TEST["properties"]["Locations"])
    assert 2 <= criteria["failedLocationCount"] < len(locations)  # one location's blip is no outage


QUERY: str = alerts.resolve(LOG_ALERT["properties"]["criteria"]["allOf"][0]["query"])
EVENT_NAMES = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', QUERY))


def logged_events() -> dict[str, str]:
    """Each log event name the code writes -> the text of (one of) its calls."""
    found: dict[str, str] = {}
    for path in SOURCES:
        text = path.read_text()
        for match in re.finditer(r'\(\s*"([a-z_]+\.[a-z_]+)",?(?P<rest>[^)]*)', text):
            found.setdefault(match.group(1), "")
            found[match.group(1)] += match.group("rest")
    return found


def test_the_log_alert_reads_the_worker_lines_in_application_insights() -> None:
    assert [accessor(scope) for scope in LOG_ALERT["properties"]["scopes"]] == ["applicationInsights.id"]
    assert QUERY.lstrip().startswith("traces")
    # Under the host (LOG_SINK=logging, which the deployment sets) each line is a row of traces
    # whose message is the line as JSON, the event name under "event" (structlog's key).
    assert "parse_json(message)" in QUERY
    assert "line.event" in QUERY
    assert "line.status" in QUERY


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def host_lines() -> Iterator[Records]:
    """The worker's lines as the Functions host receives them (LOG_SINK=logging)."""
    from lifecycle.logs import LIBRARIES, ROOT_LOGGER, configure
    from lifecycle.settings import LogSink

    # `configure` sets process-wide logger levels: they are put back as they were.
    levels = {name: logging.getLogger(name).level for name in (ROOT_LOGGER, *LIBRARIES)}
    handler = Records()
    logging.getLogger(ROOT_LOGGER).addHandler(handler)
    configure("INFO", sink=LogSink.LOGGING)
    yield handler
    logging.getLogger(ROOT_LOGGER).removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


def matches(message: str) -> bool:
    """The query's filter, in Python: what the rule counts."""
    if "message.dead_lettered" not in message and "reconcile.finished" not in message:
        return False
    line = json.loads(message)
    event, status = str(line.get("event", "")), str(line.get("status", ""))
    return event == "message.dead_lettered" or (event == "reconcile.finished" and status == "failed")


def test_the_query_counts_the_lines_the_worker_writes_and_nothing_else(host_lines: Records) -> None:
    from lifecycle.logs import get_logger

    log = get_logger("lifecycle.processor")
    log.error("message.dead_lettered", subscription_id="sub-1", operation_id="op-1", reason="gone", recorded=True)
    log.error("reconcile.finished", status="failed", error="MarketplaceUnavailable: down")
    log.info("reconcile.finished", status="succeeded", error="")
    log.warning("message.rescheduled", reason="API down")
    assert [matches(message) for message in host_lines.messages] == [True, True, False, False]
    # The filter above is the rule's own, clause for clause.
    assert 'message contains "message.dead_lettered" or message contains "reconcile.finished"' in QUERY
    assert 'where event == "message.dead_lettered" or (event == "reconcile.finished" and status == "failed")' in QUERY


@pytest.mark.parametrize("event", ["message.dead_lettered", "reconcile.finished"])
def test_the_log_alert_watches_for_giving_up_and_failed_runs(event: str) -> None:
    assert event in EVENT_NAMES


def test_every_event_the_log_alert_names_is_one_the_code_writes() -> None:
    assert EVENT_NAMES
    missing = EVENT_NAMES - set(logged_events())
    assert not missing, f"the alert waits for log lines nothing writes: {sorted(missing)}"


def test_a_reconcile_run_counts_only_when_it_failed() -> None:
    from lifecycle.domain.reconcile_runs import RunStatus

    assert "status=run.status.value" in logged_events()["reconcile.finished"]
    assert f'status == "{RunStatus.FAILED.value}"' in QUERY
    assert "reconcile.finished" in QUERY.split("where event ==", 1)[1]


def test_the_dead_letter_line_is_an_error_the_processor_writes_under_the_host() -> None:
    source = (ROOT / "functions" / "processor.py").read_text()
    assert re.search(r'\.error\(\s*"message\.dead_lettered"', source)
