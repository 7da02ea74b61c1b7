"""Keptn timestamps: emit one format, accept the ones Keptn components actually send."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from sli_provider.errors import SliProviderError

_UNIX_SECONDS = re.compile(r"^\d+(\.\d+)?$")
# Go's RFC 3339 may carry up to nine fractional digits; Python's parser takes at most six.
_FRACTION = re.compile(r"\.(\d+)")


class TimestampError(SliProviderError, ValueError):
    """A timestamp string that no Keptn component would produce."""


def format_keptn(moment: float | datetime) -> str:
    """UTC with milliseconds and a literal Z, as go-utils writes (keptn-protocol.md §7)."""
    if isinstance(moment, datetime):
        dt = moment.astimezone(UTC)
    else:
        dt = datetime.fromtimestamp(moment, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_keptn(text: str) -> float:
    """Unix seconds from RFC 3339 (any fraction, Z or offset), a zone-less ISO time, or unix seconds."""
    value = text.strip()
    if not value:
        raise TimestampError("empty timestamp")
    if _UNIX_SECONDS.match(value):
        return float(value)
    normalised = value.replace("z", "Z")
    if normalised.endswith("Z"):
        normalised = normalised[:-1] + "+00:00"
    normalised = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], normalised, count=1)
    try:
        dt = datetime.fromisoformat(normalised)
    except ValueError:
        raise TimestampError(f"not an RFC 3339 timestamp or unix seconds: {text!r}") from None
    if dt.tzinfo is None:
        # go-utils ParseTimestamp reads zone-less times as UTC.
        dt = dt.replace(tzinfo=UTC)
    seconds = dt.timestamp()
    if not math.isfinite(seconds):
        raise TimestampError(f"timestamp out of range: {text!r}")
    return seconds
