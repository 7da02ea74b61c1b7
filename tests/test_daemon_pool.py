"""The Prometheus client's worker pool: results, errors, bounded threads, no join at exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from sli_provider.adapters.daemon_pool import DaemonThreadPool


async def test_results_errors_and_bounded_workers() -> None:
    pool = DaemonThreadPool(max_workers=3, thread_name_prefix="t")
    loop = asyncio.get_running_loop()
    names: set[str] = set()

    def work(i: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.01)
        if i == 7:
            raise ValueError("seven")
        return i * 2

    futures = [loop.run_in_executor(pool, work, i) for i in range(20)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    pool.shutdown(wait=True)
    assert results[3] == 6
    assert isinstance(results[7], ValueError)
    assert len(names) <= 3
    with pytest.raises(RuntimeError):
        pool.submit(work, 1)


def test_a_stuck_worker_does_not_delay_exit() -> None:
    """A thread blocked for 30 s must not keep the interpreter alive after main returns."""
    code = (
        "import time\n"
        "from sli_provider.adapters.daemon_pool import DaemonThreadPool\n"
        "pool = DaemonThreadPool(1, 'stuck')\n"
        "pool.submit(time.sleep, 30)\n"
        "time.sleep(0.1)\n"
        "pool.shutdown(wait=False, cancel_futures=True)\n"
    )
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)
    assert time.monotonic() - began < 5
