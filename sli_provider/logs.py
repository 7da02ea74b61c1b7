"""Logs: the service's are one JSON object a line, carrying the Keptn context of the event
being handled; the shell commands' are plain sentences on stderr, warnings and errors only,
unless a log level is asked for."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

from sli_provider.config import LogLevel

keptn_context: contextvars.ContextVar[str] = contextvars.ContextVar("keptn_context", default="")
event_id: contextvars.ContextVar[str] = contextvars.ContextVar("event_id", default="")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = keptn_context.get()
        if context:
            entry["shkeptncontext"] = context
        current_event = event_id.get()
        if current_event:
            entry["event_id"] = current_event
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: LogLevel) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.value)
    # aiohttp's access log repeats what our own lines say; keep it for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class SentenceFormatter(logging.Formatter):
    """``sli-provider: warning: <message>``: what a person at a terminal or in a CI log reads."""

    def format(self, record: logging.LogRecord) -> str:
        return f"sli-provider: {record.levelname.lower()}: {record.getMessage()}"


def configure_command_logging(level: LogLevel, *, asked: bool) -> None:
    """A shell command's logging: JSON records at ``level`` when a level was asked for (the
    ``LOG_LEVEL`` variable or ``--log-level``), else warnings and errors as sentences."""
    if asked:
        configure_logging(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SentenceFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
