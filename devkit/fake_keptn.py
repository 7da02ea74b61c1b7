"""A fake Keptn control plane: the distributor's /event, the API's /v1/event, resource-service.

It plays Keptn's part in demos and tests and follows /work/shared/keptn-protocol.md: §4.1 and
§4.2 for event intake, §5.1 for resources. Replies are checked as strictly as Keptn can check
them, but problems are collected in ``violations`` instead of rejecting the event, so a test
can both see what was sent and assert ``fake.violations == []``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote

from aiohttp import web

from devkit._http import LoopbackServer
from devkit.keptn_checks import TaskOrderTracker, check_reply, parse_event_body

# The distributor's API_PROXY_MAX_PAYLOAD_BYTES_KB default; larger bodies get a 500.
DISTRIBUTOR_MAX_BODY = 64 * 1024
# Above the distributor limit, so that limit is answered the distributor's way, not with 413.
_CLIENT_MAX_SIZE = 4 * 1024 * 1024
_RESOURCE_PREFIXES = ("/resource-service/v1/", "/v1/")


@dataclass(frozen=True)
class ResourceRequest:
    """One request to the resource service as it arrived (path still URL-encoded)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased


@dataclass(frozen=True)
class EventPost:
    """One POST to an event endpoint and the status it was answered with."""

    route: str
    status: int


@dataclass(frozen=True)
class _Scope:
    project: str
    stage: str | None
    service: str | None


class _BadResourcePath(ValueError):
    pass


class FakeKeptn(LoopbackServer):
    """``async with FakeKeptn() as keptn:`` a control plane at ``keptn.url`` on loopback."""

    def __init__(self, api_token: str | None = None) -> None:
        self.api_token = api_token
        self.events: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.resource_requests: list[ResourceRequest] = []
        self.event_posts: list[EventPost] = []
        # (scope, uri) -> content per commit id; None is the branch's HEAD.
        self._resources: dict[tuple[_Scope, str], dict[str | None, bytes]] = {}
        self._scopes: set[_Scope] = set()
        self._resource_failure: int | None = None
        self._event_failure: int | None = None
        self._event_failures_left = 0
        self._refusing: int | None = None  # every event POST answered so, until lifted
        self._answer_delay = 0.0  # seconds an event POST waits for its answer, once taken
        self._order = TaskOrderTracker()
        self._changed = asyncio.Condition()
        super().__init__(self._make_app())

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def event_url(self) -> str:
        """Where an integration next to a distributor posts its replies."""
        return self.url + "/event"

    @property
    def api_event_url(self) -> str:
        """The Keptn API's event endpoint (needs ``x-token`` when ``api_token`` is set)."""
        return self.url + "/v1/event"

    @property
    def resource_service_url(self) -> str:
        """Base of the resource service as the distributor proxies it."""
        return self.url + "/resource-service"

    # -- configuration -----------------------------------------------------------------------

    def set_resource(
        self,
        content: str | bytes,
        uri: str,
        project: str,
        stage: str | None = None,
        service: str | None = None,
        commit: str | None = None,
    ) -> None:
        """Store ``content`` at ``uri`` (decoded, e.g. ``k6/sli.yaml``) on one level.

        With ``commit``, it is the content as of that commit, served for ``?gitCommitID=<commit>``
        as the resource service checks the commit out; without, it is the content at HEAD,
        served without a gitCommitID and for a commit that has no content of its own.
        """
        scope = self._add_scope(project, stage, service)
        versions = self._resources.setdefault((scope, uri), {})
        versions[commit] = content.encode() if isinstance(content, str) else content

    def add_scope(self, project: str, stage: str | None = None, service: str | None = None) -> None:
        """Make a project/stage/service exist without resources (404s say "Resource")."""
        self._add_scope(project, stage, service)

    def _add_scope(self, project: str, stage: str | None, service: str | None) -> _Scope:
        if service is not None and stage is None:
            raise ValueError("a service lives in a stage: pass stage too")
        scope = _Scope(project, stage, service)
        self._scopes.update({_Scope(project, None, None), _Scope(project, stage, None), scope})
        return scope

    def fail_resources_with(self, status: int | None) -> None:
        """Answer every resource GET with ``status`` (None restores normal service)."""
        self._resource_failure = status

    def fail_events_with(self, status: int | None, times: int) -> None:
        """Answer the next ``times`` event POSTs (either route) with ``status``."""
        self._event_failure = status
        self._event_failures_left = times if status is not None else 0

    def answer_events_late(self, seconds: float) -> None:
        """Take each event POST and record it as usual, but answer only ``seconds`` later (a
        Keptn too busy to confirm in time; 0 restores prompt answers)."""
        self._answer_delay = seconds

    @contextlib.asynccontextmanager
    async def outage(self, *, status: int | None = 503) -> AsyncIterator[None]:
        """Keptn's API during a control-plane rollout, for the body of the ``with``.

        With ``status`` (503, as the API gateway answers while the api-service restarts) every
        event POST is answered so and not taken; with ``status=None`` the port is closed and
        connections are refused, as while the distributor or the gateway itself restarts. Either
        way nothing posted meanwhile is recorded; normal service resumes afterwards."""
        if status is None:
            await self._site.close_port()
        else:
            self._refusing = status
        try:
            yield
        finally:
            if status is None:
                await self._site.reopen_port()
            else:
                self._refusing = None

    # -- inspection --------------------------------------------------------------------------

    def events_for(self, context: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("shkeptncontext") == context]

    async def wait_for_events(
        self,
        *,
        type: str,  # the CloudEvent attribute's name, shadowing the builtin on purpose
        shkeptncontext: str | None = None,
        count: int = 1,
        timeout: float = 30,
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` matching events arrived; returns all matches."""

        def matching() -> list[dict[str, Any]]:
            return [
                e
                for e in self.events
                if e.get("type") == type
                and (shkeptncontext is None or e.get("shkeptncontext") == shkeptncontext)
            ]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = [(e.get("type"), e.get("shkeptncontext")) for e in self.events]
            raise TimeoutError(
                f"waited {timeout:g} s for {count} x {type} (context {shkeptncontext}); "
                f"got {len(matching())}. All events so far (type, context): {seen}"
            ) from None
        return matching()

    # -- HTTP --------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
        app.router.add_post("/event", self._distributor_event)
        app.router.add_post("/v1/event", self._api_event)
        # aiohttp matches routes on the decoded path, where k6%2Fsli.yaml already became two
        # segments; catch everything and split the raw path instead.
        app.router.add_get("/resource-service/v1/{tail:.*}", self._resource)
        app.router.add_get("/v1/project/{tail:.*}", self._resource)
        return app

    def _token_ok(self, request: web.Request) -> bool:
        return self.api_token is None or request.headers.get("x-token") == self.api_token

    def _take_event_failure(self) -> int | None:
        if self._refusing is not None:
            return self._refusing
        if self._event_failure is None or self._event_failures_left <= 0:
            return None
        self._event_failures_left -= 1
        return self._event_failure

    async def _distributor_event(self, request: web.Request) -> web.StreamResponse:
        status, response = await self._distributor_intake(request)
        self.event_posts.append(EventPost("/event", status))
        return response

    async def _distributor_intake(self, request: web.Request) -> tuple[int, web.StreamResponse]:
        body = await request.read()
        failure = self._take_event_failure()
        if failure is not None:
            return failure, web.Response(status=failure)
        if len(body) > DISTRIBUTOR_MAX_BODY:
            self.violations.append(
                f"/event: body of {len(body)} bytes exceeds the distributor's "
                f"{DISTRIBUTOR_MAX_BODY}-byte limit (answered 500)"
            )
            return 500, web.Response(status=500, text="request body too large")
        try:
            event, problems = parse_event_body(body)
        except ValueError as exc:
            return 500, web.Response(status=500, text=f"could not decode event: {exc}")
        # The distributor reads the body as a structured CloudEvent: binary mode has no
        # specversion in the body and fails the same way.
        if not isinstance(event, dict) or "specversion" not in event:
            return 500, web.Response(status=500, text="body is not a structured CloudEvent")
        await self._record("/event", event, problems)
        await asyncio.sleep(self._answer_delay)
        return 200, web.Response(status=200)

    async def _api_event(self, request: web.Request) -> web.StreamResponse:
        status, response = await self._api_intake(request)
        self.event_posts.append(EventPost("/v1/event", status))
        return response

    async def _api_intake(self, request: web.Request) -> tuple[int, web.StreamResponse]:
        if not self._token_ok(request):
            return 401, _error(401, "invalid or missing x-token")
        body = await request.read()
        failure = self._take_event_failure()
        if failure is not None:
            return failure, _error(failure, "injected failure")
        try:
            event, problems = parse_event_body(body)
        except ValueError as exc:
            return 400, _error(400, f"invalid JSON: {exc}")
        if not isinstance(event, dict):
            return 400, _error(400, "event must be a JSON object")
        missing = [key for key in ("type", "source", "data") if not event.get(key)]
        if missing:
            return 400, _error(400, f"missing {', '.join(missing)}")
        await self._record("/v1/event", event, problems)
        await asyncio.sleep(self._answer_delay)
        return 200, web.json_response({"keptnContext": _api_context(event.get("shkeptncontext"))})

    async def _record(self, route: str, event: dict[str, Any], problems: list[str]) -> None:
        self.violations += [f"{route}: {p}" for p in problems]
        self.violations += [f"{route}: {p}" for p in check_reply(event)]
        self.violations += [f"{route}: {p}" for p in self._order.observe(event)]
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        raw_path, _, _ = request.raw_path.partition("?")
        self.resource_requests.append(
            ResourceRequest(
                path=raw_path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
            )
        )
        if not self._token_ok(request):
            return _error(401, "invalid or missing x-token")
        if self._resource_failure is not None:
            return _error(self._resource_failure, "injected failure")
        try:
            scope, uri = _parse_resource_path(raw_path)
        except _BadResourcePath as exc:
            self.violations.append(f"resource request {raw_path}: {exc}")
            return _error(404, str(exc))
        missing = self._missing_scope(scope)
        if missing is not None:
            return _error(404, f"{missing} not found")
        commit = request.query.get("gitCommitID")
        versions = self._resources.get((scope, uri), {})
        content = versions.get(commit, versions.get(None))
        if content is None:
            return _error(404, "Resource not found")
        return web.json_response(
            {
                "resourceURI": uri,
                "resourceContent": base64.b64encode(content).decode("ascii"),
                "metadata": {
                    "branch": scope.stage or "main",
                    "upstreamURL": "",
                    "version": commit or "HEAD",
                },
            }
        )

    def _missing_scope(self, scope: _Scope) -> str | None:
        if _Scope(scope.project, None, None) not in self._scopes:
            return "Project"
        if scope.stage is not None and _Scope(scope.project, scope.stage, None) not in self._scopes:
            return "Stage"
        if scope.service is not None and scope not in self._scopes:
            return "Service"
        return None


def _parse_resource_path(raw_path: str) -> tuple[_Scope, str]:
    for prefix in _RESOURCE_PREFIXES:
        if raw_path.startswith(prefix):
            rest = raw_path[len(prefix) :]
            break
    else:
        raise _BadResourcePath("not a resource-service path")
    parts = rest.split("/")
    if "resource" not in parts:
        raise _BadResourcePath("no /resource/ segment")
    at = parts.index("resource")
    head, uri_parts = parts[:at], parts[at + 1 :]
    if len(uri_parts) != 1 or not uri_parts[0]:
        raise _BadResourcePath(
            "resourceURI must be one URL-encoded segment ('/' as %2F, keptn-protocol.md §5.1)"
        )
    names = [unquote(part) for part in head]
    uri = unquote(uri_parts[0])
    match names:
        case ["project", project]:
            return _Scope(project, None, None), uri
        case ["project", project, "stage", stage]:
            return _Scope(project, stage, None), uri
        case ["project", project, "stage", stage, "service", service]:
            return _Scope(project, stage, service), uri
    raise _BadResourcePath("expected project[/stage/S[/service/V]]/resource/URI")


def _api_context(context: Any) -> str:
    # The API keeps a UUID context, turns any other value into a deterministic UUID and
    # creates one when there is none (keptn-protocol.md §4.2).
    if not isinstance(context, str) or not context:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(context))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, context))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


def resource_uri_segment(uri: str) -> str:
    """``k6/sli.yaml`` -> ``k6%2Fsli.yaml``, as go-utils encodes it (``url.QueryEscape``)."""
    return quote_plus(uri)
