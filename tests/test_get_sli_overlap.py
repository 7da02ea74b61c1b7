"""get-sli overlaps its steps: the started event is sent while sli.yaml is read, the
run-series check runs alongside the config read, and queries that check cannot change start
before it answers. None of that may reorder or repeat replies or change what fails: one started
event, then one finished event, whatever is fast, slow or failing. Real Prometheus (behind the
devkit gateway), the real EventSender and the fake Keptn; nothing here measures speed
(bench/getsli.py does)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any

import pytest
from aiohttp import web

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.adapters.keptn_api import EventSender
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import KeptnEvent, Result, Status
from sli_provider.metrics import ServiceMetrics
from sli_provider.service import replying
from sli_provider.service.replying import Finished, TaskReplies
from tests.helpers import get_sli_event, send_event, trigger_for

STARTED, FINISHED = "sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"
WINDOW = {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:05:00.000Z"}
PASSED = Finished(
    Status.SUCCEEDED,
    Result.PASS,
    "",
    {
        "get-sli": {
            **WINDOW,
            "indicatorValues": [{"metric": "vus_max", "value": 3, "success": True}],
        }
    },
)
SHUT_DOWN = Finished(
    Status.ERRORED, Result.FAIL, "shut down", {"get-sli": {**WINDOW, "indicatorValues": []}}
)
WAIT = 20.0  # only a bound on waiting for something that must happen, never a measurement


def errored(exc: Exception) -> Finished:
    return Finished(Status.ERRORED, Result.FAIL, f"internal error: {exc}", SHUT_DOWN.payload)


def types(keptn: FakeKeptn, event: KeptnEvent) -> list[str]:
    return [e["type"] for e in keptn.events if e.get("triggeredid") == event.id]


def undelivered(metrics: ServiceMetrics, kind: str, maybe_sent: str) -> float:
    labels = {"task": "get-sli", "kind": kind, "maybe_sent": maybe_sent}
    return metrics.registry.get_sample_value("sli_provider_replies_undelivered_total", labels) or 0


class HeldStarted:
    """The real EventSender, holding the started event until ``release`` is set: a slow Keptn."""

    def __init__(self, sender: EventSender) -> None:
        self._sender = sender
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled: list[str] = []

    async def send(self, reply: Mapping[str, Any]) -> None:
        if reply["type"] == STARTED:
            self.holding.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.append(STARTED)
                raise
        await self._sender.send(reply)


@pytest.fixture
async def sender(fake_keptn: FakeKeptn) -> AsyncIterator[EventSender]:
    sender = EventSender(fake_keptn.event_url, token=None, timeout=5, attempts=3, max_wait=0.05)
    yield sender
    await sender.aclose()


def overlapped(event: KeptnEvent, held: HeldStarted, metrics: ServiceMetrics) -> TaskReplies:
    return TaskReplies(trigger=event, task="get-sli", send=held.send, source="t", metrics=metrics)


async def test_work_done_before_the_started_event_is_sent_still_finishes_after_it(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    """The work runs while the started event is still on its way and is done first; the
    finished event waits for it, so Keptn sees them in order, once each."""
    event, held, metrics = get_sli_event(), HeldStarted(sender), ServiceMetrics()

    async def work() -> Finished:
        await held.holding.wait()  # the started event is being sent: the work did not wait for it
        assert types(fake_keptn, event) == []
        asyncio.get_running_loop().call_soon(held.release.set)
        return PASSED

    task = overlapped(event, held, metrics)
    async with asyncio.timeout(WAIT):
        result = await task.run(
            work,
            on_shutdown=lambda: SHUT_DOWN,
            on_error=errored,
            hold_started_until=asyncio.Event(),
        )
    assert result == PASSED
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert task.answered is not None
    assert (task.answered.started_delivered, task.answered.finished_delivered) == (True, True)
    assert fake_keptn.violations == []


async def test_work_failing_fast_while_the_started_event_is_slow_still_finishes_after_it(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event, held = get_sli_event(), HeldStarted(sender)

    async def work() -> Finished:
        await held.holding.wait()
        asyncio.get_running_loop().call_soon(held.release.set)
        raise ValueError("config read failed at once")

    async with asyncio.timeout(WAIT):
        result = await overlapped(event, held, ServiceMetrics()).run(
            work,
            on_shutdown=lambda: SHUT_DOWN,
            on_error=errored,
            hold_started_until=asyncio.Event(),
        )
    assert result.status is Status.ERRORED and "config read failed" in result.message
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert fake_keptn.violations == []


async def test_an_overlapped_started_event_that_fails_does_not_block_the_finished_event(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event, metrics = get_sli_event(), ServiceMetrics()
    fake_keptn.fail_events_with(400, times=1)  # the started event, the first reply sent

    async def work() -> Finished:
        return PASSED

    task = TaskReplies(trigger=event, task="get-sli", send=sender.send, source="t", metrics=metrics)
    async with asyncio.timeout(WAIT):
        await task.run(
            work,
            on_shutdown=lambda: SHUT_DOWN,
            on_error=errored,
            hold_started_until=asyncio.Event(),
        )
    assert types(fake_keptn, event) == [FINISHED]
    assert undelivered(metrics, "started", "false") == 1
    assert task.answered is not None
    assert (task.answered.started_delivered, task.answered.finished_delivered) == (False, True)


async def test_cancelled_while_the_overlapped_started_event_is_held_sends_the_shutdown_finished(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event, held, metrics = get_sli_event(), HeldStarted(sender), ServiceMetrics()
    working = asyncio.Event()

    async def work() -> Finished:
        working.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    run = asyncio.create_task(
        overlapped(event, held, metrics).run(
            work,
            on_shutdown=lambda: SHUT_DOWN,
            on_error=errored,
            hold_started_until=asyncio.Event(),
        )
    )
    async with asyncio.timeout(WAIT):
        await asyncio.gather(held.holding.wait(), working.wait())
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert held.cancelled == [STARTED]  # given up, as when the started event goes first
    assert undelivered(metrics, "started", "true") == 1
    assert types(fake_keptn, event) == [FINISHED]
    assert fake_keptn.events[-1]["data"]["message"] == "shut down"


# -- a started event held until the work's queries are out (as get-sli's) -----------------------


@pytest.fixture
def long_hold_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hold's own bound far beyond WAIT: a test passes only if the work's signal, the end of
    the work or the shutdown sent the started event, never the bound."""
    monkeypatch.setattr(replying, "STARTED_EVENT_MAX_HOLD", 10 * WAIT)


def run_held(
    task: TaskReplies,
    work: Callable[[], Awaitable[Finished]],
    queries_out: asyncio.Event | None = None,
) -> Coroutine[Any, Any, Finished]:
    """``task.run`` as the get-sli handler calls it: the started event overlapped with the work,
    held until ``queries_out`` is set (one never set unless given)."""
    return task.run(
        work,
        on_shutdown=lambda: SHUT_DOWN,
        on_error=errored,
        hold_started_until=queries_out if queries_out is not None else asyncio.Event(),
    )


@pytest.mark.usefixtures("long_hold_bound")
async def test_a_held_started_event_goes_when_the_work_says_its_queries_are_out(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event, held, queries_out = get_sli_event(), HeldStarted(sender), asyncio.Event()
    held.release.set()

    async def work() -> Finished:
        for _ in range(10):  # the work's own requests go out first
            await asyncio.sleep(0)
        assert not held.holding.is_set()
        queries_out.set()
        await held.holding.wait()  # sent while the work goes on
        return PASSED

    async with asyncio.timeout(WAIT):
        result = await run_held(overlapped(event, held, ServiceMetrics()), work, queries_out)
    assert result == PASSED
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert fake_keptn.violations == []


@pytest.mark.usefixtures("long_hold_bound")
@pytest.mark.parametrize("ends", ["returns", "raises"])
async def test_work_that_ends_without_its_signal_sends_the_started_event_at_once(
    fake_keptn: FakeKeptn, sender: EventSender, ends: str
) -> None:
    """E.g. an invalid request, or no indicator to query: the started event does not wait for
    a signal that never comes, and the finished event follows it."""
    event, held = get_sli_event(), HeldStarted(sender)
    held.release.set()

    async def work() -> Finished:
        if ends == "raises":
            raise ValueError("sli.yaml unreadable")
        return PASSED

    async with asyncio.timeout(WAIT):
        result = await run_held(overlapped(event, held, ServiceMetrics()), work)
    assert result.status is (Status.SUCCEEDED if ends == "returns" else Status.ERRORED)
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert fake_keptn.violations == []


async def test_a_held_started_event_goes_after_its_bound_without_the_signal(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    """A work that waits long before querying (a run's last push not visible yet) does not keep
    the started event back: it goes after STARTED_EVENT_MAX_HOLD while the work still runs."""
    event, held = get_sli_event(), HeldStarted(sender)
    held.release.set()

    async def work() -> Finished:
        await held.holding.wait()
        return PASSED

    began = time.monotonic()
    async with asyncio.timeout(WAIT):
        await run_held(overlapped(event, held, ServiceMetrics()), work)
    assert time.monotonic() - began >= replying.STARTED_EVENT_MAX_HOLD
    assert types(fake_keptn, event) == [STARTED, FINISHED]


@pytest.mark.usefixtures("long_hold_bound")
async def test_shutdown_before_a_held_started_event_left_sends_it_then_the_shutdown_finished_event(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    """Cancelled while the started event is still held: it has not left, so it goes now, and
    the shutdown's finished event after it; Keptn never sees a finished event alone."""
    event, held, metrics = get_sli_event(), HeldStarted(sender), ServiceMetrics()
    held.release.set()
    working = asyncio.Event()

    async def work() -> Finished:
        working.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    task = overlapped(event, held, metrics)
    run = asyncio.create_task(run_held(task, work))
    async with asyncio.timeout(WAIT):
        await working.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert fake_keptn.events[-1]["data"]["message"] == "shut down"
    assert task.answered is not None
    assert (task.answered.started_delivered, task.answered.finished_delivered) == (True, True)
    assert undelivered(metrics, "started", "true") == 0
    assert fake_keptn.violations == []


# -- the service: config read and run-series check overlapped -----------------------------------


class RecordingGateway(TenantGateway):
    """The devkit gateway, also recording each PromQL query in the order it arrives."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, tenant=None, token=None)
        self.queries: list[str] = []

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(request.rel_url.query.get("query", ""))
        return await super()._forward(request)


async def replies_to(fake_keptn: FakeKeptn, url: str, event: dict[str, Any]) -> dict[str, Any]:
    """POST the event; the one finished event, after checking it followed one started event."""
    await send_event(url, event)
    (finished,) = await fake_keptn.wait_for_events(
        type=FINISHED, shkeptncontext=event["shkeptncontext"], timeout=WAIT
    )
    assert [e["type"] for e in fake_keptn.events_for(event["shkeptncontext"])] == [
        STARTED,
        FINISHED,
    ]
    assert fake_keptn.violations == []
    return finished


async def test_config_read_failing_while_the_run_series_check_hangs_answers_with_the_config_error(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """The run-series check starts alongside the config read; when the read fails, the check
    (stuck in Prometheus here) is dropped and the answer is the config error, as when it never
    ran."""
    fake_keptn.fail_resources_with(500)
    event = trigger_for(load_run, load_tags, ["vus_max"])
    async with RecordingGateway(prometheus.url) as gateway:
        gateway.hold_queries_containing("k6_vus_max")  # the run-series check, and the built-in
        settings = Settings(
            prometheus_url=gateway.url,
            distributor_url=fake_keptn.url,
            reply_attempts=3,
            http_timeout_seconds=5,
            retry_max_wait_seconds=0.1,
            get_sli_deadline_seconds=120,
        )
        async with running_service(settings) as url:
            finished = await replies_to(fake_keptn, url, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert "cannot read the SLI configuration" in data["message"]


async def test_custom_queries_start_while_the_run_series_check_hangs_and_the_deadline_still_holds(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """A custom SLI's query reads the same whatever the run-series check says, so it reaches
    Prometheus while the check is stuck; the get-sli deadline passing during the check still
    errors the request, with one started event and one finished event."""
    scope = f'keptn_project="{load_tags.project}",keptn_context="{load_tags.context}"'
    custom = f"max(max_over_time(k6_iterations_total{{{scope}}}[$DURATION_SECONDS]))"
    fake_keptn.set_resource(
        f"indicators:\n  iterations: {custom}\n", "k6/sli.yaml", project=load_tags.project
    )
    event = trigger_for(load_run, load_tags, ["iterations", "vus_max"])
    async with RecordingGateway(prometheus.url) as gateway:
        gateway.hold_queries_containing("k6_vus_max")  # the run-series check's first query
        # No freshness check: with it, custom queries of a run's window wait for its verdict.
        settings = Settings(
            prometheus_url=gateway.url,
            distributor_url=fake_keptn.url,
            get_sli_deadline_seconds=2,
            query_timeout_seconds=30,
            query_attempts=1,
            freshness_wait_seconds=0,
        )
        async with running_service(settings) as url:
            finished = await replies_to(fake_keptn, url, event)
            queries = list(gateway.queries)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert "while looking for the run's series" in data["message"]
    series_check = [q for q in queries if "k6_vus_max" in q]
    started_custom = [q for q in queries if q.startswith("max(max_over_time(k6_iterations_total")]
    assert len(series_check) == 1 and len(started_custom) == 1  # the check never answered


# -- sli.yaml is parsed once per content ------------------------------------------------------


async def test_each_get_sli_reads_the_sli_yaml_it_finds_parsed_files_are_reused_by_content(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """Parsing is kept per file content: a changed sli.yaml is used at once, and a broken one
    fails every request that meets it, not only the first."""
    scope = f'keptn_project="{load_tags.project}",keptn_context="{load_tags.context}"'
    first = f"max(max_over_time(k6_vus_max{{{scope}}}[$DURATION_SECONDS]))"
    second = f"min(min_over_time(k6_vus_max{{{scope}}}[$DURATION_SECONDS]))"
    settings = Settings(prometheus_url=prometheus.url, distributor_url=fake_keptn.url)
    outcomes = []
    async with running_service(settings) as url:
        for text in (
            f"indicators:\n  vus: {first}\n",
            f"indicators:\n  vus: {second}\n",
            "indicators: [unclosed",
            "indicators: [unclosed",
        ):
            fake_keptn.set_resource(text, "k6/sli.yaml", project=load_tags.project)
            event = trigger_for(load_run, load_tags, ["vus"])
            event["shkeptncontext"] = str(uuid.uuid4())  # its own replies, the same run's data
            data = (await replies_to(fake_keptn, url, event))["data"]
            values = data["get-sli"]["indicatorValues"]
            outcomes.append((data["status"], values[0]["query"][:3] if values else data["message"]))
    assert outcomes[:2] == [("succeeded", "max"), ("succeeded", "min")]
    assert [status for status, _ in outcomes[2:]] == ["errored", "errored"]
    assert all("not valid YAML" in message for _, message in outcomes[2:])
