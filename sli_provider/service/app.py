"""The aiohttp application: wires the adapters to the handlers and owns their lifecycles."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sli_provider.adapters.cloudevents_in import BadEvent, parse_cloudevent
from sli_provider.adapters.keptn_api import EventSender, resource_source_problem
from sli_provider.adapters.nats_bus import NatsBus
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.adapters.sqlite_journal import JournalUnavailable
from sli_provider.config import Settings
from sli_provider.errors import SliProviderError
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.evaluation import ProviderUnavailable, SLIConfigInvalid, SLIEvaluator
from sli_provider.ports.resources import ResourceReader
from sli_provider.runner.k6_operator.backend import K6OperatorBackend
from sli_provider.runner.local import log_k6_line
from sli_provider.service.dedupe import journaled
from sli_provider.service.dispatch import Dispatcher, Disposition, Overflow
from sli_provider.service.gate import Gate
from sli_provider.service.gate_http import (
    bearer_ok,
    gate_handler,
    json_answer,
    json_body,
    unauthorized,
)
from sli_provider.service.get_sli_handler import GetSLIHandler
from sli_provider.service.interrupted import InterruptedTestRun
from sli_provider.service.preview import (
    PreviewError,
    results_as_json,
    window_from_json,
    window_from_query,
)
from sli_provider.service.replying import SendEvent, until_delivered
from sli_provider.service.tasks import TaskSupervisor
from sli_provider.service.testrun import RunnerConfig, TestRunner
from sli_provider.wiring import (
    Configuration,
    Journal,
    make_config_reader,
    make_evaluator,
    make_gate_history,
    make_journal,
    make_k6_operator,
    make_nats,
    make_prometheus,
    make_resources,
    make_runner_backend,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class Components:
    """Everything the request handlers use, created in the app's cleanup context."""

    settings: Settings
    metrics: ServiceMetrics
    prometheus: PrometheusRouter
    evaluator: SLIEvaluator
    dispatcher: Dispatcher
    get_sli_tasks: TaskSupervisor
    # Test runs are stopped at once at shutdown (k6 killed, errored finished event sent); get-sli
    # events get the grace period to finish.
    test_tasks: TaskSupervisor
    nats: NatsBus | None
    # Where sli.yaml and slo.yaml come from: /ready says when it cannot be read.
    config_reader: ResourceReader
    gate: Gate
    stopping: asyncio.Event
    stopped: asyncio.Event


COMPONENTS = web.AppKey("components", Components)
CONFIGURATION = web.AppKey("configuration", Configuration)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ServiceMetrics)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    session = aiohttp.ClientSession()
    prometheus = make_prometheus(app[CONFIGURATION], metrics)
    get_sli_tasks, test_tasks = TaskSupervisor(), TaskSupervisor()
    nats_bus: NatsBus | None = None
    journal: Journal | None = make_journal(settings, metrics)
    event_sender: EventSender | None = None
    k6_operator: K6OperatorBackend | None = None
    gate_history = make_gate_history(settings)
    try:
        if journal is not None:
            await journal.start()
        send: SendEvent
        # The bus hands events to the dispatcher and the dispatcher's replies go out on the
        # bus: the dispatcher is made below, and the bus delivers nothing before its start().
        dispatcher: Dispatcher
        # Beyond MAX_EVENTS_IN_FLIGHT: JetStream leaves the event in the stream (nak), core NATS
        # keeps it in JOURNAL_PATH, or waits for room with the client buffering the next ones.
        nats_overflow = (
            Overflow.REFUSE if settings.nats_delivery == "jetstream" else Overflow.KEEP_OR_WAIT
        )
        if settings.nats_url:
            ingress = make_nats(
                settings,
                metrics,
                journal=journal,
                on_event=lambda event: dispatcher.accept(
                    event, ingress="nats", overflow=nats_overflow
                ),
                on_malformed=lambda reason: dispatcher.malformed(reason, ingress="nats"),
            )
            nats_bus = ingress.bus
            send = nats_bus.publish
        else:
            event_sender = EventSender(
                settings.event_url,
                token=settings.keptn_api_token.reveal() if settings.keptn_api_token else None,
                timeout=settings.http_timeout_seconds,
                attempts=settings.reply_attempts,
                max_wait=settings.retry_max_wait_seconds,
                on_retry=lambda _error, _attempt: metrics.retries.labels("keptn").inc(),
            )
            send = event_sender.send
        if journal is not None:
            send = journaled(send, journal, metrics.duplicates_suppressed.inc)
        # Outermost, so each try asks the journal again whether the reply went out meanwhile.
        send = until_delivered(
            send,
            max_wait=settings.retry_max_wait_seconds,
            on_retry=lambda: metrics.retries.labels("reply").inc(),
        )
        evaluator = make_evaluator(
            app[CONFIGURATION], session=session, prometheus=prometheus, metrics=metrics
        )
        get_sli = GetSLIHandler(
            evaluator=evaluator,
            send=send,
            source=settings.source,
            metrics=metrics,
            deadline_seconds=settings.get_sli_deadline_seconds,
        )
        test_runner = None
        if settings.runner_enabled:
            k6_operator = make_k6_operator(settings, prometheus.for_project, app[CONFIGURATION].k6)
            if k6_operator is not None:
                await _delete_leftovers(k6_operator)
            test_runner = TestRunner(
                config=RunnerConfig(
                    config_resource=settings.k6_config_resource,
                    max_parallel=settings.max_parallel_tests,
                ),
                backend=make_runner_backend(
                    app[CONFIGURATION], k6_operator=k6_operator, on_line=log_k6_line
                ),
                resources=make_resources(settings, session),
                prometheus=prometheus,
                send=send,
                source=settings.source,
                metrics=metrics,
            )
        dispatcher = Dispatcher(
            sli_provider=settings.sli_provider,
            get_sli=get_sli.handle,
            get_sli_tasks=get_sli_tasks,
            test_run=test_runner.handle if test_runner else None,
            test_tasks=test_tasks,
            metrics=metrics,
            seen=journal,
            test_interrupted=InterruptedTestRun(
                send=send,
                source=settings.source,
                metrics=metrics,
                cleanup=k6_operator.delete_for_event if k6_operator else None,
            ).handle,
            max_in_flight=settings.max_events_in_flight,
        )
        app[COMPONENTS] = Components(
            settings=settings,
            metrics=metrics,
            prometheus=prometheus,
            evaluator=evaluator,
            dispatcher=dispatcher,
            get_sli_tasks=get_sli_tasks,
            test_tasks=test_tasks,
            nats=nats_bus,
            config_reader=make_config_reader(app[CONFIGURATION], session),
            gate=Gate(
                settings=settings,
                reader=make_config_reader(app[CONFIGURATION], session),
                evaluator=evaluator,
                prometheus=prometheus,
                history=gate_history,
                run_workload=test_runner.run_once if test_runner else None,
            ),
            stopping=asyncio.Event(),
            stopped=asyncio.Event(),
        )
        if nats_bus is not None:
            await nats_bus.start()
        if journal is not None:  # after start: the replies may go over NATS
            await resume_unfinished(journal, dispatcher)
        # Not "ready": serve binds the port after this and logs "listening on" then.
        log.info("sli-provider started", extra={"fields": {"settings": settings.describe()}})
        yield
        await drain(app)
    finally:
        await asyncio.gather(test_tasks.close(0.0), get_sli_tasks.close(0.0))
        if nats_bus is not None:
            await nats_bus.aclose()
        if event_sender is not None:
            await event_sender.aclose()
        if journal is not None:
            await journal.aclose()
        if k6_operator is not None:
            await k6_operator.aclose()
        await gate_history.aclose()
        await prometheus.aclose()
        await session.close()


async def resume_unfinished(journal: Journal, dispatcher: Dispatcher) -> None:
    """What the previous run of this process accepted and did not finish, taken again at
    start-up, before the HTTP port opens (JOURNAL_PATH): the file is this process's alone, so
    nothing in it is in flight elsewhere, and a new delivery of one of them is a duplicate."""
    count = await journal.unfinished_count()
    if count:
        log.warning("resuming %d event(s) accepted before a restart and not finished", count)
    await dispatcher.resume_journaled(count)


async def _delete_leftovers(k6_operator: K6OperatorBackend) -> None:
    """TestRuns an earlier process of this replica started cannot be reported by anyone now
    (its events were answered by a taking-over replica, or never will be): delete them."""
    try:
        deleted = await k6_operator.delete_leftovers()
    except SliProviderError as exc:
        log.error("cannot look for TestRuns this replica left behind: %s", exc)
        return
    if deleted:
        log.warning("deleted TestRuns left by this replica's previous run: %s", ", ".join(deleted))


async def drain(app: web.Application) -> None:
    """The graceful part of shutdown: not ready, no new events, work in flight finishes.

    /ready answers 503 at once; the NATS subscriptions are drained; every k6 run is stopped
    (each gets an errored finished event); get-sli events get SHUTDOWN_GRACE_SECONDS to finish, then
    are cancelled and answered errored. Idempotent; the server calls it on SIGTERM before it
    stops listening, so the probes see 503 while this runs.
    """
    components = app[COMPONENTS]
    if components.stopping.is_set():
        await components.stopped.wait()
        return
    components.stopping.set()
    log.info(
        "draining: no new events; %d in flight",
        components.get_sli_tasks.active + components.test_tasks.active,
    )
    try:
        if components.nats is not None:
            await components.nats.stop_receiving()
        await asyncio.gather(
            components.test_tasks.close(0.0),
            components.get_sli_tasks.close(components.settings.shutdown_grace_seconds),
        )
    finally:
        components.stopped.set()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (413 from ``request.read()``, 404, 405) as JSON, like ours."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text or ""
        message = text if text and not text.startswith(f"{exc.status}:") else exc.reason
        kept = {k: v for k, v in exc.headers.items() if k not in ("Content-Type", "Content-Length")}
        return web.json_response({"error": message}, status=exc.status, headers=kept)


_HTTP_STATUS = {
    Disposition.ACCEPTED: 202,
    Disposition.IGNORED: 202,
    Disposition.DUPLICATE: 202,
    Disposition.REJECTED: 400,
    Disposition.REFUSED: 503,
    Disposition.BUSY: 503,
    Disposition.KEPT: 202,  # taken: the journal holds it until there is room
}
# Seconds after which a sender refused for MAX_EVENTS_IN_FLIGHT may try again; Keptn's
# distributor retries on its own schedule, other senders may honour it.
BUSY_RETRY_AFTER = "1"


async def receive_event(request: web.Request) -> web.Response:
    components = request.app[COMPONENTS]
    body = await request.read()  # over client_max_size aiohttp answers 413 itself
    try:
        event = parse_cloudevent(request.headers, body)
    except BadEvent as exc:
        components.dispatcher.malformed(str(exc), ingress="http")
        return _error(400, str(exc))
    try:
        # Beyond MAX_EVENTS_IN_FLIGHT: kept in JOURNAL_PATH, else 503 with Retry-After.
        decision = await components.dispatcher.accept(
            event, ingress="http", overflow=Overflow.KEEP_OR_REFUSE
        )
    except JournalUnavailable as exc:  # not taken: the distributor's retry may find it working
        log.error("event %s not taken: %s", event.id, exc)
        return _error(503, f"event not taken, the journal is not available: {exc}")
    status = _HTTP_STATUS[decision.disposition]
    if status == 400:
        return _error(400, decision.reason)
    body_json = {"status": decision.disposition.value}
    if decision.reason:
        body_json["reason"] = decision.reason
    headers = (
        {"Retry-After": BUSY_RETRY_AFTER} if decision.disposition is Disposition.BUSY else None
    )
    return web.json_response(body_json, status=status, headers=headers)


def _authorized(request: web.Request) -> bool:
    return bearer_ok(request, request.app[COMPONENTS].settings.preview_token)


async def preview(request: web.Request) -> web.Response:
    if not _authorized(request):
        return unauthorized("preview")
    try:
        if request.method == "POST":
            window = window_from_json(await json_body(request))
        else:
            multi = {k: request.query.getall(k) for k in request.query}
            window = window_from_query(request.query, multi)
    except PreviewError as exc:
        return web.json_response({"error": str(exc), "problems": exc.problems}, status=400)
    components = request.app[COMPONENTS]
    try:
        results = await components.evaluator.evaluate(window)
    except SLIConfigInvalid as exc:  # the caller's sli.yaml: their error, with the reason
        return _error(400, str(exc))
    except ProviderUnavailable as exc:
        return _error(502, str(exc))
    store = await components.prometheus.for_project(window.project).store_info()
    return json_answer(results_as_json(results, store))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    components = request.app[COMPONENTS]
    if components.stopping.is_set():
        return web.json_response({"status": "shutting down"}, status=503)
    if components.nats is not None and not components.nats.connected:
        return web.json_response({"status": components.nats.not_ready_reason}, status=503)
    if not await components.prometheus.ready():
        return web.json_response({"status": "prometheus is not ready"}, status=503)
    problem = await resource_source_problem(
        components.config_reader, components.settings.sli_resource
    )
    if problem is not None:
        return web.json_response({"status": problem}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(
    configuration: Configuration, metrics: ServiceMetrics | None = None
) -> web.Application:
    """The app for a configuration already loaded (:func:`sli_provider.wiring.load_configuration`)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
    app[CONFIGURATION] = configuration
    app[SETTINGS] = configuration.settings
    app[METRICS] = metrics or ServiceMetrics()
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/", receive_event)
    app.router.add_post("/preview", preview)
    app.router.add_get("/preview", preview)
    gate = gate_handler(
        lambda request: request.app[COMPONENTS].gate,
        lambda request: request.app[COMPONENTS].settings.preview_token,
        webhook=False,
    )
    app.router.add_get("/gate", gate)
    app.router.add_post("/gate", gate)
    app.router.add_post(
        "/gate/webhook",
        gate_handler(
            lambda request: request.app[COMPONENTS].gate,
            lambda request: request.app[COMPONENTS].settings.preview_token,
            webhook=True,
        ),
    )
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
