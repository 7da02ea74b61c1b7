"""Keptn's side of the wire: sending reply events and reading resources.

Both go either through the distributor sidecar (http://localhost:8081) or, with KEPTN_API_URL,
straight to the Keptn API with the ``x-token`` header (keptn-protocol.md §4.1, §4.2, §5.1).
Error tree::

    KeptnAPIError
    └── EventDeliveryError    a reply not confirmed (also a ReplyNotDelivered: maybe_sent says
                              whether it may have arrived all the same)

Reading a resource raises the resource port's ResourceError (ports/resources.py): a
resource level answered something other than 200 or 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from sli_provider.adapters.delivery import ReplyNotDelivered
from sli_provider.adapters.retry import Deadline, with_retries
from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import encode_event
from sli_provider.ports.resources import ResourceError, ResourceReader

log = logging.getLogger(__name__)


class KeptnAPIError(SliProviderError):
    pass


class EventDeliveryError(KeptnAPIError, ReplyNotDelivered):
    pass


class _RetryableStatus(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


def _transient(error: BaseException) -> bool:
    """For reads, which may be repeated: any connection trouble, timeout or 5xx."""
    return isinstance(
        error, aiohttp.ClientConnectionError | asyncio.TimeoutError | _RetryableStatus
    )


def _not_sent(error: BaseException) -> bool:
    """For replies: only failures after which the event certainly was not taken.

    No connection could be made (each reply opens its own, so this cannot be a stale pooled
    one), or the receiver answered that it did not take the event: the distributor answers 500
    when it could not decode or forward it, a proxy 502/503, a rate limit 429. A timeout, a
    dropped connection or 504 after the request went out may have delivered it, so it is not
    repeated. Keptn's go-utils sender repeats on any undelivered result, but it has no timeout
    of its own (an answer that comes late still counts); a timeout here bounds the wait and
    must not become a second finished event (keptn-delivery.md).
    """
    if isinstance(error, _RetryableStatus):
        return error.status != 504
    return isinstance(error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


class EventSender:
    """Posts structured CloudEvents; repeats one only when it certainly did not arrive.

    ``timeout`` is the deadline of one reply, every try included. Owns its HTTP session: each
    POST goes over a new connection, so a connection error tells "not sent" from "maybe sent".
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float,
        attempts: int,
        max_wait: float,
        on_retry: Callable[[BaseException, int], None] | None = None,
    ) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        self._url = url
        self._shown_url = str(URL(url).with_user(None))  # no userinfo in messages and logs
        self._headers = {"Content-Type": "application/cloudevents+json"}
        if token:
            self._headers["x-token"] = token
        self._timeout = timeout
        self._attempts = attempts
        self._max_wait = max_wait
        self._on_retry = on_retry

    async def send(self, event: Mapping[str, Any]) -> None:
        body = encode_event(event)
        kind = event.get("type")
        deadline = Deadline(self._timeout)

        async def post() -> None:
            async with self._session.post(
                self._url,
                data=body,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=deadline.remaining()),
            ) as response:
                text = await response.text()
                if response.status >= 500 or response.status == 429:
                    raise _RetryableStatus(response.status, text)
                if response.status >= 300:
                    raise EventDeliveryError(
                        f"{self._shown_url} refused {kind}: HTTP {response.status} {text[:200]}",
                        maybe_sent=False,
                    )

        try:
            await with_retries(
                post,
                attempts=self._attempts,
                max_wait=self._max_wait,
                retryable=_not_sent,
                deadline=deadline,
                on_retry=self._on_retry,
            )
        except (TimeoutError, aiohttp.ClientError, _RetryableStatus) as exc:
            maybe_sent = not _not_sent(exc)
            what = (
                "not confirmed; it may have arrived, so it is not sent again"
                if maybe_sent
                else "not delivered"
            )
            raise EventDeliveryError(
                f"{kind} to {self._shown_url}: {what}: {exc or type(exc).__name__}",
                maybe_sent=maybe_sent,
                retry_later=not maybe_sent,  # refused for now (restarting, overloaded)
            ) from exc

    async def aclose(self) -> None:
        await self._session.close()


class KeptnResourceReader:
    """Keptn's resource service (through the distributor or the API gateway).

    ``timeout`` is the deadline of one read, every try included; a read may be repeated freely.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        attempts: int,
        max_wait: float,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"x-token": token} if token else {}
        self._timeout = timeout
        self._attempts = attempts
        self._max_wait = max_wait

    def _path(self, uri: str, project: str, stage: str | None, service: str | None) -> str:
        # Event values become single path segments: quote everything, '/' included.
        path = f"/v1/project/{quote(project, safe='')}"
        if stage is not None:
            path += f"/stage/{quote(stage, safe='')}"
            if service is not None:
                path += f"/service/{quote(service, safe='')}"
        return path + f"/resource/{quote(uri, safe='')}"

    def describe(self, uri: str, project: str, stage: str | None, service: str | None) -> str:
        return f"resource-service {self._path(uri, project, stage, service)}"

    async def read(
        self, uri: str, project: str, stage: str | None, service: str | None, commit: str
    ) -> bytes | None:
        url = URL(self._base + self._path(uri, project, stage, service), encoded=True)
        if commit:
            url = url.update_query({"gitCommitID": commit})
        deadline = Deadline(self._timeout)

        async def get() -> bytes | None:
            async with self._session.get(
                url,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=deadline.remaining()),
            ) as response:
                if response.status == 404:
                    return None
                text = await response.text()
                if response.status >= 500:
                    raise _RetryableStatus(response.status, text)
                if response.status != 200:
                    raise ResourceError(
                        f"{self.describe(uri, project, stage, service)}: HTTP {response.status} "
                        f"{text[:200]}"
                    )
                try:
                    payload = await response.json(content_type=None)
                    return base64.b64decode(payload["resourceContent"], validate=True)
                except (ValueError, KeyError, TypeError, binascii.Error):
                    raise ResourceError(
                        f"{self.describe(uri, project, stage, service)}: not a resource response"
                    ) from None

        try:
            return await with_retries(
                get,
                attempts=self._attempts,
                max_wait=self._max_wait,
                retryable=_transient,
                deadline=deadline,
            )
        except (TimeoutError, aiohttp.ClientError, _RetryableStatus) as exc:
            raise ResourceError(
                f"{self.describe(uri, project, stage, service)}: unreachable: "
                f"{exc or type(exc).__name__}"
            ) from exc

    async def problem(self, uri: str) -> str | None:
        """One read of a project that does not exist, without retries: 404 (or any answer but
        5xx, 401 and 403) means every real read can be answered."""
        where = f"the resource service ({self._base})"
        url = URL(self._base + self._path(uri, READINESS_PROJECT, None, None), encoded=True)
        try:
            async with self._session.get(
                url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=READINESS_TIMEOUT)
            ) as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return f"{where} is unreachable: {exc or type(exc).__name__}"
        if status in (401, 403):
            return f"{where} refuses the token (HTTP {status})"
        if status >= 500:
            return f"{where} answers HTTP {status}"
        return None


# Asked by /ready: a project that does not exist, so a reachable resource service answers 404.
READINESS_PROJECT = "sli-provider-readiness-probe"
READINESS_TIMEOUT = 2.0


async def resource_source_problem(reader: ResourceReader, uri: str) -> str | None:
    """Why the resource source cannot serve reads now (None: it can). Only Keptn's resource
    service can be away; a local directory is always there (a missing file is "not found")."""
    if not isinstance(reader, KeptnResourceReader):
        return None
    return await reader.problem(uri)


def _plain_part(part: str) -> bool:
    """One path segment that names an entry of its directory, not the directory or its parent."""
    return bool(part) and part not in {".", ".."} and not any(c in part for c in "/\\\0")


class LocalResourceReader:
    """Local mode: ``<root>/<project>[/<stage>[/<service>]]/<uri>`` on disk."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _file(self, uri: str, project: str, stage: str | None, service: str | None) -> Path:
        parts = [project] + [p for p in (stage, service) if p is not None]
        for part in parts:
            # Values come from events: a name must never climb out of the config directory.
            if not _plain_part(part):
                raise ResourceError(f"{part!r} cannot be used as a directory name")
        # Nor may a resource name (a workload's file, a script named after a test strategy),
        # wherever it came from: each of its parts stays below the level's directory.
        uri_parts = uri.split("/")
        if not all(_plain_part(part) for part in uri_parts):
            raise ResourceError(f"{uri!r} is not a relative path below {self._root}")
        return self._root.joinpath(*parts, *uri_parts)

    def describe(self, uri: str, project: str, stage: str | None, service: str | None) -> str:
        return str(self._file(uri, project, stage, service))

    async def read(
        self, uri: str, project: str, stage: str | None, service: str | None, commit: str
    ) -> bytes | None:
        path = self._file(uri, project, stage, service)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ResourceError(f"{path}: {exc.strerror}") from None
