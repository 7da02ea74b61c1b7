"""How a reply that did not reach Keptn failed, because that decides whether trying again is safe.

Keptn counts task events without dedupe (keptn-delivery.md): a second finished event ends a
task early or makes lighthouse evaluate twice, a missing one leaves the sequence stuck. So a
reply is sent again only when it certainly did not leave (no connection, or the receiver
answered that it did not take it); once it may have left, it is never sent again, and the loss
is reported instead.
"""

from __future__ import annotations

from enum import StrEnum

from sli_provider.errors import SliProviderError


class ReplyNotDelivered(SliProviderError):
    """A reply that Keptn did not confirm. ``maybe_sent``: it may have arrived all the same.
    ``retry_later``: certainly not taken, for a reason that passes (no connection, Keptn
    answering 5xx or 429 during a restart), so the same reply may be tried again later;
    False for a refusal that trying again does not change (a 4xx)."""

    def __init__(self, message: str, *, maybe_sent: bool, retry_later: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
        self.retry_later = retry_later and not maybe_sent


class Delivery(StrEnum):
    """What became of the replies one event was due: what decides whether an ingress may
    settle it (JetStream's ack, the SQLite journal letting it go)."""

    NO_REPLY_DUE = "no reply due"  # not ours after all (e.g. no k6 workload for its strategy)
    DELIVERED = "delivered"  # the finished reply was confirmed
    NOT_DELIVERED = "not delivered"  # not confirmed: must not be settled as answered
