"""Prometheus's garbage collector, kept out of the timings and shown beside them.

Go collects once its heap has grown by GOGC % (100) since the last collection. On the small
dataset one variant's queries allocate enough that, left alone, a collection comes about every
second run, and a run that meets one takes nearly twice as long. Which runs meet one then follows
from the order of the variants, not from what they do (in a fixed cycle, the one after the
service would always start on a fresh heap), so the medians would compare positions in the cycle
(figures in bench/README.md, "Prometheus's garbage collector").

So each timed run starts right after a full collection, asked for through Go's pprof heap
endpoint (``gc=1``), which Prometheus serves, and the bench reports what each variant allocated
in Prometheus: garbage a variant leaves behind costs a later collection, and that cost stays
visible as megabytes instead of landing at random on some other run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

_COLLECTIONS = re.compile(r"^go_gc_duration_seconds_count (\S+)$", re.MULTILINE)
_ALLOCATED = re.compile(r"^go_memstats_alloc_bytes_total (\S+)$", re.MULTILINE)


class GoRuntimeError(RuntimeError):
    pass


@dataclass(frozen=True)
class GoHeap:
    """Prometheus's Go runtime counters: collections finished and bytes ever allocated."""

    collections: float
    allocated_bytes: float


async def collect_garbage(session: aiohttp.ClientSession, base: str) -> None:
    """A full collection in Prometheus; returns when it is done (``runtime.GC`` blocks)."""
    async with session.get(base + "/debug/pprof/heap", params={"gc": "1"}) as response:
        await response.read()
    if response.status != 200:
        raise GoRuntimeError(f"{base}/debug/pprof/heap?gc=1 answered HTTP {response.status}")


async def heap(session: aiohttp.ClientSession, base: str) -> GoHeap:
    async with session.get(base + "/metrics") as response:
        text = await response.text()
    collections, allocated = _COLLECTIONS.search(text), _ALLOCATED.search(text)
    if response.status != 200 or collections is None or allocated is None:
        raise GoRuntimeError(f"{base}/metrics has no Go runtime counters (HTTP {response.status})")
    return GoHeap(float(collections.group(1)), float(allocated.group(1)))
