"""The simulated API server's storage: objects, resourceVersions, the watch history and GC.

One counter gives every write a new resourceVersion, as etcd's revision does. The history of
events is kept so a watch can start from any resourceVersion still in it; ``compact()`` drops it
(as etcd compaction does), after which older resourceVersions get 410 Gone. Deleting an object
deletes, unless orphaned, every object whose ``metadata.ownerReferences`` name its uid (the
garbage collector's background/foreground propagation, done at once here).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from devkit.kube.resources import ALL_RESOURCES, ResourceType
from devkit.kube.selectors import FieldRequirement, Requirement
from devkit.kube.status import already_exists, conflict, gone, not_found

Object = dict[str, Any]
Key = tuple[str, str, str]  # (qualified resource, namespace, name)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    namespace: str
    obj: Object
    previous: Object | None = None  # the object before a MODIFIED

    def as_seen_by(self, selection: Filter) -> Event | None:
        """This event as a watch with ``selection`` sees it: an object modified into the
        selection is ADDED for it, one modified out of it DELETED (as the watch cache does)."""
        now = selection.matches(self.resource, self.namespace, self.obj)
        if self.type != "MODIFIED" or self.previous is None:
            return self if now else None
        before = selection.matches(self.resource, self.namespace, self.previous)
        if now and before:
            return self
        if now:
            return replace(self, type="ADDED")
        if before:
            return replace(self, type="DELETED")
        return None


@dataclass(frozen=True)
class Filter:
    resource: ResourceType
    namespace: str | None
    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    def matches(self, resource: ResourceType, namespace: str, obj: Object) -> bool:
        if resource != self.resource or (
            self.namespace is not None and namespace != self.namespace
        ):
            return False
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in self.labels) and all(
            f.matches(obj) for f in self.fields
        )


class Watcher:
    """One open watch: events arrive on ``queue``; ``None`` means the server cut the stream."""

    def __init__(self, selection: Filter) -> None:
        self.selection = selection
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()


class Store:
    def __init__(self) -> None:
        self._revision = 0
        self._objects: dict[Key, Object] = {}
        self._types: dict[Key, ResourceType] = {}
        self._history: list[Event] = []
        # Watches from a resourceVersion below this are too old (compacted away).
        self._oldest_watchable = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []

    @property
    def revision(self) -> int:
        return self._revision

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Controllers (the simulated operator) hear every event synchronously."""
        self._listeners.append(listener)

    def objects(self, resource: ResourceType, namespace: str | None = None) -> list[Object]:
        return [
            copy.deepcopy(obj)
            for (qualified, ns, _), obj in sorted(self._objects.items())
            if qualified == resource.qualified and (namespace is None or ns == namespace)
        ]

    def find_uid(self, namespace: str, uid: str) -> Object | None:
        for (_, ns, _), obj in self._objects.items():
            if ns == namespace and obj["metadata"]["uid"] == uid:
                return obj
        return None

    def get(self, resource: ResourceType, namespace: str, name: str) -> Object:
        obj = self._objects.get((resource.qualified, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return copy.deepcopy(obj)

    def query(self, selection: Filter) -> tuple[list[Object], int]:
        items = [
            copy.deepcopy(obj)
            for key, obj in sorted(self._objects.items())
            if selection.matches(self._types[key], key[1], obj)
        ]
        return items, self._revision

    def create(self, resource: ResourceType, namespace: str, obj: Object) -> Object:
        metadata = obj.setdefault("metadata", {})
        key = (resource.qualified, namespace, metadata["name"])
        if key in self._objects:
            raise already_exists(resource, metadata["name"])
        self._revision += 1
        metadata.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._revision),
            creationTimestamp=now_rfc3339(),
        )
        if resource.group:  # generation is kept for custom resources and the apps/batch kinds
            metadata["generation"] = 1
        self._objects[key] = obj
        self._types[key] = resource
        self._emit(Event(self._revision, "ADDED", resource, namespace, copy.deepcopy(obj)))
        self._collect_if_owners_gone(resource, namespace, obj)
        return copy.deepcopy(obj)

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        obj: Object,
        *,
        expected_version: str | None = None,
        spec_changed: bool = False,
    ) -> Object:
        metadata = obj["metadata"]
        key = (resource.qualified, namespace, metadata["name"])
        current = self._objects.get(key)
        if current is None:
            raise not_found(resource, metadata["name"])
        if expected_version and expected_version != current["metadata"]["resourceVersion"]:
            raise conflict(
                resource,
                metadata["name"],
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if obj == current:  # a no-op write does not bump the resourceVersion
            return copy.deepcopy(current)
        self._revision += 1
        metadata["resourceVersion"] = str(self._revision)
        if spec_changed and "generation" in metadata:
            metadata["generation"] = current["metadata"]["generation"] + 1
        self._objects[key] = obj
        self._emit(
            Event(self._revision, "MODIFIED", resource, namespace, copy.deepcopy(obj), current)
        )
        return copy.deepcopy(obj)

    def delete(
        self, resource: ResourceType, namespace: str, name: str, *, orphan: bool = False
    ) -> Object:
        key = (resource.qualified, namespace, name)
        obj = self._objects.pop(key, None)
        if obj is None:
            raise not_found(resource, name)
        del self._types[key]
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self._emit(Event(self._revision, "DELETED", resource, namespace, copy.deepcopy(obj)))
        if not orphan:
            self._collect_dependents(namespace, obj["metadata"]["uid"])
        return copy.deepcopy(obj)

    def _collect_dependents(self, namespace: str, owner_uid: str) -> None:
        for key, obj in list(self._objects.items()):
            if key not in self._objects or key[1] != namespace:
                continue  # already collected through another owner
            owners = obj["metadata"].get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in owners) and not any(
                self.find_uid(namespace, ref.get("uid", "")) for ref in owners
            ):
                self.delete(self._types[key], namespace, key[2])

    def _collect_if_owners_gone(self, resource: ResourceType, namespace: str, obj: Object) -> None:
        # The garbage collector deletes a dependent whose owners all do not exist (a wrong uid).
        owners = obj["metadata"].get("ownerReferences") or []
        if owners and not any(self.find_uid(namespace, ref.get("uid", "")) for ref in owners):
            self.delete(resource, namespace, obj["metadata"]["name"])

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for watcher in list(self._watchers):
            seen = event.as_seen_by(watcher.selection)
            if seen is not None:
                watcher.queue.put_nowait(seen)
        for listener in list(self._listeners):
            listener(event)

    def watch(self, selection: Filter, since: int | None) -> tuple[Watcher, list[Event]]:
        """Open a watch; returns it and the events to send first.

        ``since`` None or 0: ADDED for every current object (as the real server's "any" version);
        otherwise every event after ``since`` still in the history, or 410 Gone.
        """
        watcher = Watcher(selection)
        if not since:
            backlog = [
                Event(self._revision, "ADDED", self._types[key], key[1], copy.deepcopy(obj))
                for key, obj in sorted(self._objects.items())
                if selection.matches(self._types[key], key[1], obj)
            ]
        else:
            if since < self._oldest_watchable:
                raise gone(f"too old resource version: {since} ({self._oldest_watchable})")
            seen = (e.as_seen_by(selection) for e in self._history if e.resource_version > since)
            backlog = [event for event in seen if event is not None]
        self._watchers.add(watcher)
        return watcher, backlog

    def stop_watch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def compact(self) -> int:
        """Forget the history up to now: watching from an older resourceVersion gets 410 Gone."""
        self._history.clear()
        self._oldest_watchable = self._revision
        return self._revision

    def cut_watches(self) -> int:
        """End every open watch stream (as an API server restart or a load balancer would)."""
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.queue.put_nowait(None)
        self._watchers.clear()
        return len(watchers)


RESOURCES_BY_PATH = {(r.group, r.version, r.plural): r for r in ALL_RESOURCES}
