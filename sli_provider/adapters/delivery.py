"""How a reply that did not reach Keptn failed, because that decides whether trying again is safe.

Keptn counts task events without dedupe (keptn-delivery.md): a second finished ends a task early
or makes lighthouse evaluate twice, a missing one leaves the sequence stuck. So a reply is sent
again only when it certainly did not leave (no connection, or the receiver answered that it did
not take it); once it may have left, it is never sent again, and the loss is reported instead.
"""

from __future__ import annotations

from sli_provider.errors import SliProviderError


class ReplyNotDelivered(SliProviderError):
    """A reply that Keptn did not confirm. ``maybe_sent``: it may have arrived all the same."""

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
