"""Read handlers: get, list (label/field selectors), watch (resourceVersion, 410, timeouts) and
pod logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from devkit.kube.resources import PODS, ResourceType
from devkit.kube.selectors import parse_field_selector, parse_label_selector
from devkit.kube.state import JSON_TYPE, STATE, json_response
from devkit.kube.status import ApiError, bad_request
from devkit.kube.store import Event, Filter, Watcher

# The real server ends a watch after minRequestTimeout (1800 s) times a random factor in [1, 2).
DEFAULT_WATCH_SECONDS = 1800
_FOLLOW_POLL_SECONDS = 0.2


def _selection(request: web.Request, resource: ResourceType) -> Filter:
    namespace = request.match_info.get("namespace")
    labels = parse_label_selector(request.query.get("labelSelector", ""))
    fields = parse_field_selector(request.query.get("fieldSelector", ""), resource.kind)
    return Filter(resource, namespace, tuple(labels), tuple(fields))


async def list_or_watch(request: web.Request, resource: ResourceType) -> web.StreamResponse:
    selection = _selection(request, resource)
    if request.query.get("watch") in ("true", "1"):
        return await _watch(request, selection)
    items, revision = request.app[STATE].store.query(selection)
    return json_response(
        {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(revision)},
            "items": items,
        }
    )


async def _watch(request: web.Request, selection: Filter) -> web.StreamResponse:
    state = request.app[STATE]
    since_text = request.query.get("resourceVersion", "")
    try:
        since = int(since_text) if since_text else None
        timeout = float(request.query.get("timeoutSeconds", DEFAULT_WATCH_SECONDS))
    except ValueError:
        raise bad_request(f"invalid resource version or timeout: {since_text!r}") from None
    response = web.StreamResponse(headers={"Content-Type": JSON_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        watcher, backlog = state.store.watch(selection, since)
    except ApiError as error:  # 410 Gone travels as an ERROR event, as the real server sends it
        await _send(response, {"type": "ERROR", "object": error.status()})
        return response
    try:
        await _stream(response, watcher, backlog, timeout)
    except ConnectionResetError:
        return response  # the client went away
    finally:
        state.store.stop_watch(watcher)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _stream(
    response: web.StreamResponse, watcher: Watcher, backlog: list[Event], timeout: float
) -> None:
    for past in backlog:
        await _send(response, {"type": past.type, "object": past.obj})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(watcher.queue.get(), remaining)
        except TimeoutError:
            return
        if event is None:  # the test cut this stream
            return
        await _send(response, {"type": event.type, "object": event.obj})


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event).encode() + b"\n")


async def get_object(request: web.Request, resource: ResourceType) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    return json_response(request.app[STATE].store.get(resource, namespace, name))


async def pod_log(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    state.store.get(PODS, namespace, name)  # 404 for an unknown pod
    container = request.query.get("container", "k6")
    if container != "k6":
        raise bad_request(f"container {container} is not valid for pod {name}")
    output = state.pods.pod_log(namespace, name)
    if output is None:
        reason = state.pods.waiting_reason(namespace, name)
        raise bad_request(f'container "k6" in pod "{name}" is waiting to start: {reason}')
    if "tailLines" in request.query:
        lines = output.splitlines(keepends=True)
        count = int(request.query["tailLines"])
        output = b"".join(lines[-count:]) if count > 0 else b""
    if request.query.get("follow") == "true":
        return await _follow_log(request, namespace, name, output)
    if "limitBytes" in request.query:
        output = output[: int(request.query["limitBytes"])]
    return web.Response(body=output, content_type="text/plain")


async def _follow_log(
    request: web.Request, namespace: str, name: str, initial: bytes
) -> web.StreamResponse:
    """Stream the log as it grows until the container ends (``follow=true``)."""
    pods = request.app[STATE].pods
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = len(pods.pod_log(namespace, name) or b"")
    try:
        await response.write(initial)
        while pods.pod_running(namespace, name):
            await asyncio.sleep(_FOLLOW_POLL_SECONDS)
            output = pods.pod_log(namespace, name) or b""
            await response.write(output[sent:])
            sent = len(output)
        await response.write((pods.pod_log(namespace, name) or b"")[sent:])
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client stopped following
    return response
