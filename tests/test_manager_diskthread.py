"""The manager's disk thread: jobs run in order off the loop thread, results and errors come back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from backends.manager.diskthread import DiskThread


def test_jobs_run_in_order_off_the_loop_thread_and_errors_reach_the_awaiting_task() -> None:
    async def main() -> None:
        disk = DiskThread("test-disk")
        ran: list[tuple[int, str]] = []

        def job(n: int) -> int:
            ran.append((n, threading.current_thread().name))
            return n * 10

        def failing() -> None:
            raise OSError(5, "Input/output error")

        try:
            futures = [disk.run(job, n) for n in range(5)]
            assert await asyncio.gather(*futures) == [0, 10, 20, 30, 40]
            assert ran == [(n, "test-disk") for n in range(5)]
            with pytest.raises(OSError, match="Input/output"):
                await disk.run(failing)
            assert await disk.run(job, 7) == 70  # the thread survives a failed job
        finally:
            disk.shutdown()

    asyncio.run(main())


def test_a_job_whose_task_gave_up_still_runs_and_shutdown_waits_for_it() -> None:
    async def main() -> None:
        disk, started, release, done = DiskThread("test-disk"), threading.Event(), threading.Event(), []

        def slow() -> None:
            started.set()
            release.wait(10)
            done.append(True)

        future = disk.run(slow)
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        future.cancel()
        release.set()
        disk.shutdown()
        assert done == [True]
        await asyncio.sleep(0)  # the settle callback finds the future cancelled and leaves it

    asyncio.run(main())


def test_shutdown_of_a_thread_that_never_ran_a_job_is_a_no_op() -> None:
    DiskThread("idle").shutdown()
