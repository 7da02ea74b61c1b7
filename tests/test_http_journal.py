"""Behind the distributor (HTTP, core NATS): 202 at once, and JOURNAL_PATH finishing after kill -9.

Real `sli-provider serve` processes, real Prometheus (held through devkit's gateway where a task
must stay in flight), real k6, replies received by the fake Keptn control plane as the
distributor would forward them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import nats
import pytest

from devkit.cli import run_sli_provider
from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.service import serve_process
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags
from sli_provider.service.interrupted import INTERRUPTED
from tests.delivery import (
    FINISHED,
    STARTED,
    get_sli_service,
    metric,
    once_each,
    publish,
    replies_to,
    trigger,
    wait_ready,
    watch,
)
from tests.helpers import (
    LOAD_JS,
    install,
    k6_processes_under,
    load_workload,
    post_event,
    run_trigger,
    workloads,
)


@contextmanager
def silent_distributor() -> Iterator[str]:
    """A distributor URL that takes connections and never answers: a reply sent there hangs."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("journal", [False, True], ids=["in memory", "JOURNAL_PATH"])
async def test_202_arrives_while_the_task_is_blocked_on_prometheus_and_its_started(
    held_prometheus: TenantGateway,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
    journal: bool,
) -> None:
    """Prometheus never answers and the distributor never confirms the started event: the event is
    still answered 202 at once, and a malformed one still gets its 400."""
    # Short grace and reply timeout: the held tasks end with the test, not 30 s later.
    extra = {"SHUTDOWN_GRACE_SECONDS": "0.5", "HTTP_TIMEOUT_SECONDS": "1"}
    if journal:
        extra["JOURNAL_PATH"] = str(tmp_path / "journal.db")
    with silent_distributor() as distributor:
        async with (
            get_sli_service(tmp_path, "s", held_prometheus.url, distributor, **extra) as service,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        ):
            loop = asyncio.get_running_loop()
            for _ in range(3):
                posted_at = loop.time()
                status, body = await post_event(
                    service.url, trigger(load_run, load_tags), session=session
                )
                assert (status, body) == (202, {"status": "accepted"})
                assert loop.time() - posted_at < 1.0
            assert await metric(service, "sli_provider_events_in_flight") == 3  # all blocked
            async with session.post(service.url + "/", data=b"{not json") as response:
                assert response.status == 400
                assert "body is not JSON" in (await response.json())["error"]


async def test_the_same_event_posted_twice_gets_one_started_and_one_finished(
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """As the distributor's retry would post it: once more after the first answer, and five
    times at once."""
    journal = {"JOURNAL_PATH": str(tmp_path / "journal.db")}
    sequential, concurrent = trigger(load_run, load_tags), trigger(load_run, load_tags)
    async with (
        get_sli_service(tmp_path, "s", prometheus.url, fake_keptn.url, **journal) as service,
        aiohttp.ClientSession() as session,
    ):
        first = await post_event(service.url, sequential, session=session)
        second = await post_event(service.url, sequential, session=session)
        at_once = await asyncio.gather(
            *(post_event(service.url, concurrent, session=session) for _ in range(5))
        )
        await fake_keptn.wait_for_events(type=FINISHED, count=2)
        await asyncio.sleep(1)  # a double would show by now
        duplicates = 'sli_provider_events_received_total{disposition="duplicate"'
        assert await metric(service, duplicates) == 5
    assert [first[0], second[0]] == [202, 202]
    assert (first[1]["status"], second[1]["status"]) == ("accepted", "duplicate")
    assert Counter(body["status"] for _, body in at_once) == {"accepted": 1, "duplicate": 4}
    assert once_each(fake_keptn, [sequential, concurrent]) == ([], [])
    assert fake_keptn.violations == []


async def test_get_sli_events_in_flight_at_a_kill_9_are_finished_once_after_a_restart(
    prometheus: PrometheusServer,
    held_prometheus: TenantGateway,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """The killed process holds every event (started sent, Prometheus not answering); the
    process restarted on the same JOURNAL_PATH evaluates them again and sends only the
    finished replies."""
    journal = {"JOURNAL_PATH": str(tmp_path / "volume" / "journal.db")}
    events = [trigger(load_run, load_tags) for _ in range(30)]
    loop = asyncio.get_running_loop()
    async with (
        get_sli_service(
            tmp_path, "doomed", held_prometheus.url, fake_keptn.url, **journal
        ) as doomed,
        aiohttp.ClientSession() as session,
    ):
        statuses = await asyncio.gather(
            *(post_event(doomed.url, e, session=session) for e in events)
        )
        assert {status for status, _ in statuses} == {202}
        await fake_keptn.wait_for_events(type=STARTED, count=len(events))
        assert await metric(doomed, "sli_provider_events_in_flight") == len(events)
        await asyncio.sleep(0.5)  # the starteds' journal records follow their confirmation
        killed_at = loop.time()
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.process.wait() == -signal.SIGKILL
    async with get_sli_service(
        tmp_path, "restarted", prometheus.url, fake_keptn.url, **journal
    ) as restarted:
        await fake_keptn.wait_for_events(type=FINISHED, count=len(events), timeout=60)
        recovered_in = loop.time() - killed_at
        await asyncio.sleep(1)  # a double would show by now
        recoveries = await metric(restarted, "sli_provider_journal_recoveries_total")
        suppressed = await metric(restarted, "sli_provider_duplicate_replies_suppressed_total")
    lost, doubled = once_each(fake_keptn, events)
    print(
        f"\nHTTP kill -9: events {len(events)}, kills 1, lost {len(lost)}, doubled "
        f"{len(doubled)}, recovered in {recovered_in:.1f} s"
    )
    assert (lost, doubled) == ([], [])
    assert (recoveries, suppressed) == (len(events), len(events))  # each started event sent once
    assert fake_keptn.violations == []
    for event in events:
        finished = next(
            e
            for e in fake_keptn.events_for(event["shkeptncontext"])
            if e["type"] == FINISHED and e["triggeredid"] == event["id"]
        )
        assert finished["data"]["result"] == "pass", finished["data"].get("message")


async def test_core_nats_events_in_flight_at_a_kill_9_are_finished_once_after_a_restart(
    prometheus: PrometheusServer,
    held_prometheus: TenantGateway,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """NATS_DELIVERY=core: each callback returns once the event is journaled (every event gets
    its started event while the first one is still blocked), and a restart finishes them."""
    events = [trigger(load_run, load_tags) for _ in range(10)]
    async with NatsServer(tmp_path / "nats.log") as server:
        client = await nats.connect(server.url)
        try:
            listener = await watch(client)
            env = {
                "NATS_URL": server.url,
                "NATS_DELIVERY": "core",
                "JOURNAL_PATH": str(tmp_path / "journal.db"),
            }
            async with get_sli_service(
                tmp_path, "doomed", held_prometheus.url, "http://127.0.0.1:9", **env
            ) as doomed:
                await wait_ready(doomed)
                await publish(client, events)
                async with asyncio.timeout(20):
                    while len(listener.replies) < len(events):
                        listener.changed.clear()
                        await listener.changed.wait()
                await asyncio.sleep(0.5)  # the starteds' journal records
                doomed.process.send_signal(signal.SIGKILL)
                await doomed.process.wait()
            killed_at = asyncio.get_running_loop().time()
            async with get_sli_service(
                tmp_path, "restarted", prometheus.url, "http://127.0.0.1:9", **env
            ) as restarted:
                await listener.wait_finished(len(events), timeout=60)
                recovered_in = asyncio.get_running_loop().time() - killed_at
                await asyncio.sleep(1)
                assert await metric(restarted, "sli_provider_journal_recoveries_total") == 10
        finally:
            await client.close()
    print(f"\ncore NATS kill -9: events {len(events)}, recovered in {recovered_in:.1f} s")
    assert listener.problems == []
    for event in events:
        assert [r["type"] for r in listener.replies[event["id"]]] == [STARTED, FINISHED]


async def test_a_test_event_interrupted_by_kill_9_is_answered_errored_once_after_a_restart(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, target: TargetServer, tmp_path: Path
) -> None:
    """k6 dies with the killed process; the restarted one, whose journal shows the started event,
    sends only an errored finished event that says why, and runs no k6 again."""
    install(
        fake_keptn,
        workloads(load_workload(env={"VUS": "1", "DURATION": "60s"})),
        {"k6/load.js": LOAD_JS},
    )
    work = tmp_path / "runs"
    work.mkdir()
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "DISTRIBUTOR_URL": fake_keptn.url,
        "RUNNER_WORK_DIR": str(work),
        "JOURNAL_PATH": str(tmp_path / "journal.db"),
    }
    event = run_trigger(target)
    async with serve_process(env, tmp_path / "doomed.log") as doomed, aiohttp.ClientSession() as s:
        assert (await post_event(doomed.url, event, session=s))[0] == 202
        await fake_keptn.wait_for_events(type="sh.keptn.event.test.started")
        async with asyncio.timeout(30):
            while not k6_processes_under(work):  # noqa: ASYNC110 (a process, polled)
                await asyncio.sleep(0.05)
        doomed.process.send_signal(signal.SIGKILL)
        await doomed.process.wait()
    killed_at = asyncio.get_running_loop().time()
    async with serve_process(env, tmp_path / "restarted.log"):
        (finished,) = await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.finished", timeout=20
        )
        print(
            f"\ntest event kill -9: answered errored "
            f"{asyncio.get_running_loop().time() - killed_at:.1f} s after the kill"
        )
        async with asyncio.timeout(20):  # k6 notices its parent is gone at its next write
            while k6_processes_under(work):  # noqa: ASYNC110 (a process, polled)
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # a second finished event, or a new k6, would show by now
        assert k6_processes_under(work) == []
    assert replies_to(fake_keptn, event) == [
        "sh.keptn.event.test.started",
        "sh.keptn.event.test.finished",
    ]
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert finished["data"]["message"] == INTERRUPTED
    assert fake_keptn.violations == []


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"JOURNAL_PATH": "{file}/journal.db"}, "JOURNAL_PATH {file}/journal.db: File exists"),
        ({"JOURNAL_PATH": "{file}"}, "JOURNAL_PATH {file}: file is not a database"),
        (
            {"JOURNAL_PATH": "{file}.db", "NATS_URL": "nats://127.0.0.1:9"},
            "JOURNAL_PATH is for HTTP and NATS_DELIVERY=core",
        ),
    ],
    ids=["under a file", "not a database", "with jetstream"],
)
async def test_a_journal_path_that_cannot_work_stops_serve_with_one_line(
    extra: dict[str, str], needle: str, tmp_path: Path
) -> None:
    file = tmp_path / "not-a-directory"
    file.write_text("not a database, " * 100)
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "PATH": os.environ.get("PATH", ""),
        **{k: v.format(file=file) for k, v in extra.items()},
    }
    result = await run_sli_provider("serve", env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert needle.format(file=file) in result.stderr


async def test_an_event_the_journal_cannot_take_gets_503_and_is_taken_on_the_retry(
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """Another process holds the file's write lock (as a second replica wrongly sharing the
    volume would): the event is refused with 503, not taken in secret, so the distributor's retry
    is answered once the lock is gone."""
    path = tmp_path / "journal.db"
    event = trigger(load_run, load_tags)
    async with (
        get_sli_service(
            tmp_path, "s", prometheus.url, fake_keptn.url, JOURNAL_PATH=str(path)
        ) as service,
        aiohttp.ClientSession() as session,
    ):
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            status, body = await post_event(service.url, event, session=session)
            other.execute("COMMIT")
        finally:
            other.close()
        assert status == 503
        assert "the journal is not available" in body["error"]
        assert "database is locked" in body["error"]
        assert await post_event(service.url, event, session=session) == (
            202,
            {"status": "accepted"},
        )
        await fake_keptn.wait_for_events(type=FINISHED)
        await asyncio.sleep(0.5)
    assert once_each(fake_keptn, [event]) == ([], [])
