"""TaskReplies and the HTTP EventSender on their own, against the fake Keptn or a hanging server:
one started event and one finished event whatever happens, only delivered replies counted, none
sent twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from devkit.fake_keptn import FakeKeptn
from sli_provider.adapters.delivery import ReplyNotDelivered
from sli_provider.adapters.keptn_api import EventSender
from sli_provider.keptn.envelope import KeptnEvent, Result, Scope, Status, build_reply
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.replying import Finished, SendEvent, TaskReplies
from tests.helpers import get_sli_event

STARTED, FINISHED = "sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"
PASSED = Finished(
    Status.SUCCEEDED,
    Result.PASS,
    "",
    {
        "get-sli": {
            "start": "2026-01-01T00:00:00.000Z",
            "end": "2026-01-01T00:05:00.000Z",
            "indicatorValues": [{"metric": "vus_max", "value": 3, "success": True}],
        }
    },
)
SHUT_DOWN = Finished(Status.ERRORED, Result.FAIL, "shut down")


def errored(exc: Exception) -> Finished:
    return Finished(Status.ERRORED, Result.FAIL, f"internal error: {exc}")


@pytest.fixture
async def sender(fake_keptn: FakeKeptn) -> AsyncIterator[EventSender]:
    sender = EventSender(fake_keptn.event_url, token=None, timeout=5, attempts=3, max_wait=0.05)
    yield sender
    await sender.aclose()


def replies(event: KeptnEvent, send: SendEvent, metrics: ServiceMetrics, **kw: Any) -> TaskReplies:
    return TaskReplies(trigger=event, task="get-sli", send=send, source="t", metrics=metrics, **kw)


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def answered(metrics: ServiceMetrics) -> float:
    return sample(
        metrics,
        "sli_provider_events_answered_total",
        task="get-sli",
        status="succeeded",
        result="pass",
    )


def undelivered(metrics: ServiceMetrics, kind: str, maybe_sent: str) -> float:
    return sample(
        metrics,
        "sli_provider_replies_undelivered_total",
        task="get-sli",
        kind=kind,
        maybe_sent=maybe_sent,
    )


def types(keptn: FakeKeptn, event: KeptnEvent) -> list[str]:
    return [e["type"] for e in keptn.events if e.get("triggeredid") == event.id]


async def test_success_sends_one_started_and_one_finished(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    metrics, event = ServiceMetrics(), get_sli_event()

    async def work() -> Finished:
        assert types(fake_keptn, event) == [STARTED]  # the started event went out before the work
        return PASSED

    task = replies(event, sender.send, metrics)
    assert await task.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored) == PASSED
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert task.answered is not None and task.answered.finished_delivered
    assert answered(metrics) == 1
    assert fake_keptn.violations == []


async def test_an_exception_in_the_work_still_gets_one_errored_finished(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event = get_sli_event()

    async def work() -> Finished:
        raise ValueError("broken")

    result = await replies(event, sender.send, ServiceMetrics()).run(
        work, on_shutdown=lambda: SHUT_DOWN, on_error=errored
    )
    assert result.status is Status.ERRORED
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert "broken" in fake_keptn.events[-1]["data"]["message"]


async def test_cancelled_work_gets_the_shutdown_finished_and_stays_cancelled(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    event, working = get_sli_event(), asyncio.Event()

    async def work() -> Finished:
        working.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    run = asyncio.create_task(
        replies(event, sender.send, ServiceMetrics()).run(
            work, on_shutdown=lambda: SHUT_DOWN, on_error=errored
        )
    )
    await working.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert fake_keptn.events[-1]["data"]["message"] == "shut down"


class Recorder:
    """A sender that records each reply and can hold one kind forever (until cancelled)."""

    def __init__(self, hold: str | None = None) -> None:
        self.sent: list[str] = []
        self.hold = hold
        self.holding = asyncio.Event()
        self.cancelled: list[str] = []

    async def send(self, reply: Mapping[str, Any]) -> None:
        kind = str(reply["type"])
        self.sent.append(kind)
        if kind == self.hold:
            self.holding.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(kind)
                raise


async def test_cancelled_while_the_started_is_sent_the_finished_still_goes_out() -> None:
    recorder, metrics = Recorder(hold=STARTED), ServiceMetrics()

    async def work() -> Finished:
        raise AssertionError("the work never starts")

    run = asyncio.create_task(
        replies(get_sli_event(), recorder.send, metrics).run(
            work, on_shutdown=lambda: SHUT_DOWN, on_error=errored
        )
    )
    await recorder.holding.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert recorder.sent == [STARTED, FINISHED]
    assert undelivered(metrics, "started", "true") == 1


async def test_the_last_reply_is_bounded_and_cancelled_not_left_running() -> None:
    """At shutdown the finished event gets ``last_reply_timeout``; a send still hanging then is
    cancelled and awaited before run() returns, so no send outlives its owner."""
    recorder, metrics = Recorder(hold=FINISHED), ServiceMetrics()
    working = asyncio.Event()

    async def work() -> Finished:
        working.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    task = replies(get_sli_event(), recorder.send, metrics, last_reply_timeout=0.3)
    run = asyncio.create_task(task.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored))
    await working.wait()
    loop = asyncio.get_running_loop()
    began = loop.time()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert 0.25 < loop.time() - began < 2
    assert recorder.cancelled == [FINISHED]  # the send was ended, not abandoned
    assert undelivered(metrics, "finished", "true") == 1
    assert answered(metrics) == 0


async def test_a_lost_started_does_not_keep_the_finished_from_being_tried(
    fake_keptn: FakeKeptn, sender: EventSender
) -> None:
    metrics, event = ServiceMetrics(), get_sli_event()
    fake_keptn.fail_events_with(400, times=1)

    async def work() -> Finished:
        return PASSED

    task = replies(event, sender.send, metrics)
    await task.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored)
    assert types(fake_keptn, event) == [FINISHED]
    assert undelivered(metrics, "started", "false") == 1
    assert answered(metrics) == 1
    assert task.answered is not None
    assert (task.answered.started_delivered, task.answered.finished_delivered) == (False, True)


async def test_an_undelivered_finished_is_counted_and_logged_not_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Keptn API refuses both replies: nothing counts as answered, the finished event is counted
    as undelivered and logged as an error that does not show the token."""
    async with FakeKeptn(api_token="s3cret-token") as keptn:
        keptn.fail_events_with(400, times=2)
        sender = EventSender(
            keptn.api_event_url, token="s3cret-token", timeout=5, attempts=3, max_wait=0.05
        )
        metrics = ServiceMetrics()
        task = replies(get_sli_event(), sender.send, metrics)

        async def work() -> Finished:
            return PASSED

        with caplog.at_level(logging.INFO, logger="sli_provider.service.replying"):
            await task.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored)
        await sender.aclose()
    assert keptn.events == [] and len(keptn.event_posts) == 2  # refused, not retried
    assert answered(metrics) == 0
    assert undelivered(metrics, "finished", "false") == 1
    assert task.answered is not None and not task.answered.finished_delivered
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("get-sli.finished not delivered" in m and "HTTP 400" in m for m in errors), errors
    assert not any("answered" in r.getMessage() for r in caplog.records)
    assert "s3cret-token" not in caplog.text


class Blackhole:
    """Reads requests and never answers, counting the requests that arrive."""

    def __init__(self) -> None:
        self.requests = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/event"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        while line := await reader.readline():
            self.requests += line.startswith(b"POST ")

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        self._server.close()
        await self._server.wait_closed()


async def test_a_reply_that_timed_out_is_not_sent_again() -> None:
    """The receiver took the request but never answered: it may have forwarded the event, so a
    second POST could double a finished event. One POST, counted as maybe sent."""
    metrics, blackhole = ServiceMetrics(), Blackhole()
    async with blackhole as url:
        sender = EventSender(url, token=None, timeout=1.0, attempts=5, max_wait=0.05)
        try:
            task = replies(get_sli_event(), sender.send, metrics)

            async def work() -> Finished:
                return PASSED

            await task.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored)
        finally:
            await sender.aclose()
        assert blackhole.requests == 2  # one started event, one finished event
    assert undelivered(metrics, "started", "true") == 1
    assert undelivered(metrics, "finished", "true") == 1
    assert answered(metrics) == 0


async def test_504_is_not_retried_but_500_is(fake_keptn: FakeKeptn, sender: EventSender) -> None:
    """500 (the distributor could not forward) is retried; 504 may have been forwarded."""
    event = get_sli_event()
    started = build_reply(event, kind="started", source="t", scope=Scope.from_data(event.data))
    fake_keptn.fail_events_with(504, times=1)
    with pytest.raises(ReplyNotDelivered) as lost:
        await sender.send(started)
    assert lost.value.maybe_sent
    fake_keptn.fail_events_with(500, times=1)
    await sender.send(started)
    assert [p.status for p in fake_keptn.event_posts] == [504, 500, 200]
