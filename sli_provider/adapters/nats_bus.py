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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from sli_provider.adapters.retry import with_retries
from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import (
    InvalidKeptnMessage,
    KeptnEvent,
    encode_event,
    from_keptn_model,
    to_keptn_model,
)

log = logging.getLogger(__name__)


class NatsError(SliProviderError):
    pass


class NatsBus:
    def __init__(
        self,
        url: str,
        *,
        queue_group: str,
        subjects: Sequence[str],
        on_event: Callable[[KeptnEvent], object],
        timeout: float,
        attempts: int,
        max_wait: float,
        name: str = "k6-sli-provider",
    ) -> None:
        self._url = url
        self._queue_group = queue_group
        self._subjects = tuple(subjects)
        self._on_event = on_event
        self._timeout = timeout
        self._attempts = attempts
        self._max_wait = max_wait
        self._name = name
        self._client: Client | None = None
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        try:
            self._client = await nats.connect(
                self._url,
                name=self._name,
                connect_timeout=max(1, int(self._timeout)),
                max_reconnect_attempts=-1,  # keep trying: the control plane may restart
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except (OSError, nats.errors.Error) as exc:
            raise NatsError(f"cannot connect to NATS at {self._url}: {exc}") from exc
        for subject in self._subjects:
            self._subscriptions.append(
                await self._client.subscribe(subject, queue=self._queue_group, cb=self._receive)
            )
        log.info(
            "subscribed to NATS",
            extra={"fields": {"subjects": list(self._subjects), "queue_group": self._queue_group}},
        )

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def _receive(self, message: Msg) -> None:
        try:
            event = from_keptn_model(json.loads(message.data))
        except (ValueError, InvalidKeptnMessage) as exc:
            log.warning(
                "ignoring a NATS message on %s that is not a Keptn event: %s", message.subject, exc
            )
            return
        self._on_event(event)

    async def publish(self, event: Mapping[str, Any]) -> None:
        """Publish a reply on the subject equal to its type; flushed, so it left this process."""
        client = self._client
        if client is None or client.is_closed:
            raise NatsError("the NATS connection is closed")
        payload = encode_event(to_keptn_model(event))
        subject = str(event["type"])

        async def send() -> None:
            await client.publish(subject, payload)
            await client.flush(timeout=max(1, int(self._timeout)))

        await with_retries(
            send,
            attempts=self._attempts,
            max_wait=self._max_wait,
            retryable=lambda e: isinstance(e, nats.errors.Error | asyncio.TimeoutError),
        )

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
        log.warning("NATS error: %s", error)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS at %s; reconnecting", self._url)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")
