"""The quality gate's history: every evaluation in a local SQLite file, newest first.

It plays mongodb-datastore's part for the standalone gate: relative criteria compare with the
stored evaluations of the same project/stage/service exactly as lighthouse compares with earlier
``evaluation.finished`` events, and an invalidated evaluation is never compared with again.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.gate.records import StoredEvaluation
from sli_provider.keptn.timestamps import TimestampError, parse_keptn

DEFAULT_HISTORY = Path(".sli-provider") / "history.sqlite3"
EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    stage       TEXT NOT NULL,
    service     TEXT NOT NULL,
    context     TEXT NOT NULL DEFAULT '',
    time        REAL NOT NULL,
    result      TEXT NOT NULL,
    score       REAL NOT NULL,
    data        TEXT NOT NULL,
    invalidated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS evaluations_scope_time
    ON evaluations (project, stage, service, time DESC);
"""


class HistoryError(SliProviderError, ValueError):
    """The history file or an imported event cannot be used; the text says why."""


class HistoryStore:
    def __init__(self, path: Path, *, create: bool = True) -> None:
        """``create=False`` opens only an existing history (reading one must not make one)."""
        self.path = path
        if not create and not path.is_file():
            raise HistoryError(f"no history at {path}: nothing has been stored there yet")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: not a usable history database: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    def add(self, record: StoredEvaluation) -> StoredEvaluation:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO evaluations (id, project, stage, service, context, time, result, "
                "score, data, invalidated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.project,
                    record.stage,
                    record.service,
                    record.context,
                    record.time,
                    record.result,
                    record.score,
                    json.dumps(record.data, allow_nan=False),
                    int(record.invalidated),
                ),
            )
        return record

    def list(
        self,
        project: str,
        stage: str,
        service: str,
        *,
        include_invalidated: bool = True,
        limit: int | None = None,
    ) -> list[StoredEvaluation]:
        """The scope's evaluations, newest first (the datastore's order)."""
        query = "SELECT * FROM evaluations WHERE project = ? AND stage = ? AND service = ?"
        if not include_invalidated:
            query += " AND invalidated = 0"
        query += " ORDER BY time DESC, rowid DESC"
        params: list[Any] = [project, stage, service]
        if limit is not None and limit > 0:
            query += " LIMIT ?"
            params.append(limit)
        with closing(self._db.execute(query, params)) as cursor:
            return [_record(row) for row in cursor.fetchall()]

    def invalidate(self, *, evaluation_id: str | None = None, context: str | None = None) -> int:
        """Mark evaluations (by id, or every one of a Keptn context) as never to compare with."""
        if (evaluation_id is None) == (context is None):
            raise HistoryError("give an evaluation id or a context, not both")
        column, value = ("id", evaluation_id) if evaluation_id is not None else ("context", context)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE evaluations SET invalidated = 1 WHERE {column} = ?",  # noqa: S608 - fixed names
                (value,),
            )
            return cursor.rowcount

    def import_events(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        project: str | None = None,
        stage: str | None = None,
        service: str | None = None,
    ) -> int:
        """Keptn ``evaluation.finished`` events as the datastore returns them; returns the count.

        An argument fills in what an event lacks; an event naming another scope than an argument
        is refused (HistoryError, nothing stored), so the flags never mislabel a scope.
        Events already stored (same id) are skipped, so importing twice is harmless.
        """
        records = [_from_event(e, project, stage, service) for e in events]
        added = 0
        with self._transaction() as db:
            for r in records:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO evaluations (id, project, stage, service, context, "
                    "time, result, score, data, invalidated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    (
                        r.id,
                        r.project,
                        r.stage,
                        r.service,
                        r.context,
                        r.time,
                        r.result,
                        r.score,
                        json.dumps(r.data, allow_nan=False),
                    ),
                )
                added += cursor.rowcount
        return added


def _record(row: tuple[Any, ...]) -> StoredEvaluation:
    id_, project, stage, service, context, time, result, score, data, invalidated = row
    return StoredEvaluation(
        id=id_,
        project=project,
        stage=stage,
        service=service,
        context=context,
        time=time,
        result=result,
        score=score,
        data=json.loads(data),
        invalidated=bool(invalidated),
    )


def events_from_document(document: Any) -> list[Mapping[str, Any]]:
    """``{"events": [...]}`` (the datastore's answer) or a plain list."""
    events = document.get("events") if isinstance(document, Mapping) else document
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise HistoryError('expected {"events": [...]} or a list of evaluation.finished events')
    return events


def _from_event(
    event: Mapping[str, Any], project: str | None, stage: str | None, service: str | None
) -> StoredEvaluation:
    if event.get("type") not in (None, EVALUATION_FINISHED):
        raise HistoryError(
            f"event {event.get('id')!r} is {event.get('type')}, not {EVALUATION_FINISHED}"
        )
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("evaluation"), Mapping):
        raise HistoryError(f"event {event.get('id')!r} has no data.evaluation")

    def scope(key: str, given: str | None) -> str:
        own = data.get(key)
        if own and given and own != given:
            raise HistoryError(
                f"event {event.get('id')!r} is of {key} {own!r}, not {given!r} (--{key}): "
                "nothing imported; leave the flag out to keep each event's own scope"
            )
        value = own or given
        if not isinstance(value, str) or not value:
            raise HistoryError(f"event {event.get('id')!r} has no {key}; pass --{key}")
        return value

    evaluation = data["evaluation"]
    try:
        when = parse_keptn(str(event.get("time") or evaluation.get("timeEnd") or ""))
    except TimestampError as exc:
        raise HistoryError(f"event {event.get('id')!r}: {exc}") from None
    return StoredEvaluation(
        id=str(event.get("id") or uuid.uuid4()),
        project=scope("project", project),
        stage=scope("stage", stage),
        service=scope("service", service),
        context=str(event.get("shkeptncontext") or ""),
        time=when,
        result=str(data.get("result", "")),
        score=float(evaluation.get("score") or 0.0),
        data={k: data[k] for k in ("result", "status", "message", "evaluation") if k in data},
    )
