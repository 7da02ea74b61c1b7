"""Keptn's NATS, directly: queue-subscribe to the triggered events, publish the replies.

This is how lighthouse itself and Keptn's Go SDK integrations run (keptn-protocol.md §3.4):
subject = event type, payload = Keptn's event model, one queue group shared by all replicas so
each event is handled by exactly one of them. Core NATS does not redeliver, so a replica that is
down simply does not get events; the others in the group do.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from sli_provider.adapters.delivery import ReplyNotDelivered
from sli_provider.adapters.retry import Deadline, with_retries
from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import (
    InvalidKeptnMessage,
    KeptnEvent,
    encode_event,
    from_keptn_model,
    to_keptn_model,
)

log = logging.getLogger(__name__)

# What the client holds for one subscription while the callback waits for room
# (MAX_EVENTS_IN_FLIGHT, core NATS without JOURNAL_PATH); beyond it nats-py drops messages, each
# reported to the error callback (sli_provider_events_dropped_total). A triggered event is a few
# KiB at most: the bytes bound is reached first only by unusually large ones.
PENDING_MESSAGES = 10_000
PENDING_BYTES = 64 * 1024 * 1024


class NatsError(SliProviderError):
    pass


class NatsPublishError(NatsError, ReplyNotDelivered):
    pass


class Admission(Protocol):
    """What the intake (the dispatcher) decided about one event; ``task`` is the work it took on.

    Core NATS has nothing to acknowledge, so only the decision's log line and metric (written
    by the intake) remain. The JetStream consumer (jetstream.py) acks once ``task`` has ended,
    which is after its finished reply was handed over, and naks a refusal.
    """

    @property
    def disposition(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def task(self) -> asyncio.Task[Any] | None: ...


class NatsBus:
    """``timeout`` is the deadline of the first connection, of one reply (until the server
    confirmed it) and of the drain at shutdown (NATS_TIMEOUT_SECONDS)."""

    def __init__(
        self,
        url: str,
        *,
        queue_group: str,
        subjects: Sequence[str],
        on_event: Callable[[KeptnEvent], Awaitable[Admission]],
        on_malformed: Callable[[str], object],
        timeout: float,
        attempts: int,
        max_wait: float,
        name: str = "k6-sli-provider",
        on_dropped: Callable[[], object] = lambda: None,
    ) -> None:
        self._url = url
        self._queue_group = queue_group
        self._subjects = tuple(subjects)
        self._on_event = on_event
        self._on_malformed = on_malformed
        self._timeout = timeout
        self._attempts = attempts
        self._max_wait = max_wait
        self._name = name
        self._on_dropped = on_dropped
        self._client: Client | None = None
        self._subscriptions: list[Subscription] = []
        # The reason a first connection fails: the deadline's TimeoutError itself says nothing.
        self._last_error = ""

    async def start(self) -> None:
        client = Client()
        try:
            # Reconnecting forever (below) also makes nats-py retry the first connection
            # forever; the deadline keeps a wrong NATS_URL from hanging the start.
            async with asyncio.timeout(self._timeout):
                await client.connect(
                    self._url,
                    name=self._name,
                    connect_timeout=max(1, int(self._timeout)),
                    max_reconnect_attempts=-1,  # keep trying: the control plane may restart
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                self._client = client
                await self._subscribe()
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            self._subscriptions.clear()
            self._client = None
            await client.close()
            reason = str(exc) or self._last_error or "no server answered"
            raise NatsError(
                f"cannot connect to NATS at {self._url} within {self._timeout:g} s: {reason}"
            ) from exc

    async def _subscribe(self) -> None:
        """Start receiving; the JetStream ingress (jetstream.py) binds consumers instead."""
        client = self._require_client()
        for subject in self._subjects:
            self._subscriptions.append(
                await client.subscribe(
                    subject,
                    queue=self._queue_group,
                    cb=self._receive,
                    pending_msgs_limit=PENDING_MESSAGES,
                    pending_bytes_limit=PENDING_BYTES,
                )
            )
        # Until the server has the subscriptions, events published now would be lost
        # though /ready already says yes.
        await client.flush(timeout=max(1, int(self._timeout)))
        log.info(
            "subscribed to NATS",
            extra={"fields": {"subjects": list(self._subjects), "queue_group": self._queue_group}},
        )

    def _require_client(self) -> Client:
        if self._client is None:
            raise NatsError("not connected to NATS")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    @property
    def not_ready_reason(self) -> str:
        return "not connected to NATS"

    async def _receive(self, message: Msg) -> None:
        try:
            event = from_keptn_model(json.loads(message.data))
        except (ValueError, InvalidKeptnMessage) as exc:
            self._on_malformed(f"the message on {message.subject} is not a Keptn event: {exc}")
            return
        # The intake logged and counted the decision. Its task is not awaited here: nats-py
        # runs one subscription's callbacks one after another, and core NATS has no ack.
        admission = await self._on_event(event)
        log.debug("NATS message on %s: %s", message.subject, admission.disposition)

    async def publish(self, event: Mapping[str, Any]) -> None:
        """Publish a reply on the subject equal to its type, once; confirmed by a flush.

        Raises NatsPublishError; ``maybe_sent`` once the client has the payload: it goes out
        with the next write (after a reconnect too), so a flush that times out is not a reason
        to publish again. Only a publish the client refused before taking it is tried again.
        """
        subject = str(event["type"])
        client = self._client
        if client is None or client.is_closed:
            raise NatsPublishError(f"{subject} not published: no NATS connection", maybe_sent=False)
        if not client.is_connected:
            # nats-py would queue it for after the reconnect, where a flush that times out
            # could no longer tell "not sent" from "sent": it is held back here instead, and
            # the caller tries again once the connection is back.
            raise NatsPublishError(
                f"{subject} not published: reconnecting to NATS",
                maybe_sent=False,
                retry_later=True,
            )
        payload = encode_event(to_keptn_model(event))
        deadline = Deadline(self._timeout)
        try:
            await with_retries(
                lambda: client.publish(subject, payload),
                attempts=self._attempts,
                max_wait=self._max_wait,
                # The reconnect buffer is full: nothing was taken, trying later is safe.
                retryable=lambda e: isinstance(e, nats.errors.OutboundBufferLimitError),
                deadline=deadline,
            )
        except nats.errors.Error as exc:
            # nats-py checks everything before it queues the payload: refused means not taken.
            raise NatsPublishError(
                f"{subject} not published: {exc}",
                maybe_sent=False,
                retry_later=isinstance(exc, nats.errors.OutboundBufferLimitError),
            ) from exc
        except TimeoutError as exc:
            # Only a forced flush of a full buffer waits inside publish, after queueing.
            raise NatsPublishError(
                f"{subject} published but not confirmed within {self._timeout:g} s",
                maybe_sent=True,
            ) from exc
        try:
            await client.flush(timeout=max(deadline.remaining(), 0.001))  # type: ignore[arg-type]
        except Exception as exc:  # whatever failed, the payload may be out: never again
            raise NatsPublishError(
                f"{subject} published but NATS did not confirm it within {self._timeout:g} s "
                f"({exc or type(exc).__name__}); not published again",
                maybe_sent=True,
            ) from exc

    async def stop_receiving(self) -> None:
        """Drain the subscriptions: no new events, the connection stays up for replies."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            try:
                await subscription.drain()  # type: ignore[no-untyped-call]
            except nats.errors.Error as exc:
                log.warning("draining a NATS subscription failed: %s", exc)

    async def aclose(self) -> None:
        await self.stop_receiving()
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.drain(), self._timeout)
            except (nats.errors.Error, TimeoutError):
                await client.close()

    async def _on_error(self, error: Exception) -> None:
        if isinstance(error, nats.errors.SlowConsumerError):
            self._on_dropped()
            log.error("NATS event on %s dropped: too many waiting for room", error.subject)
            return
        plain = error.strerror if isinstance(error, OSError) else None  # without "[Errno 111]"
        self._last_error = plain or str(error) or type(error).__name__
        log.warning("NATS error: %s", error)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS at %s; reconnecting", self._url)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")
