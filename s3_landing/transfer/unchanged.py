"""Re-runs: the skip checks of small files (read whole, MD5) in a helper process, so that reading and hashing use a
second core while the main thread plans and reports. Threads could not: each system call of a checking thread hands
the GIL over (2 threads on 20,000 files: no faster, 130,000 context switches against 400). Jobs go in batches and
come back in the order given.

The helper repays its start (about 0.15 s before its first answer) when both sides have work to overlap: files
enough for the main thread to plan and report, bytes enough for the helper to read and hash. 100,000 files of 9
bytes would gain 1-3 s of 15, not worth the helper's memory (it and multiprocessing's resource tracker take about
35 MB beside the main process's 105; more under the `upload-s3` command, whose script, written by pip, imports the
whole program where the helper imports it again). A smaller run, or a helper that cannot start or dies, leaves the
checks to the calling thread. Once the run is stopped, nothing more is read: the jobs still waiting come back
unchecked."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import hashlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from s3_landing.discovery import MIB, MULTIPART_THRESHOLD, Job, RemoteObject, SourceFile
from s3_landing.errors import FileChanged
from s3_landing.transfer.files import ContentStats, ensure_unchanged, feed, read_whole

# Small objects listed, and their bytes, from which a helper is started. Re-runs of 20 KB files here: 2,000 took
# 0.1 s longer with a helper, 4,000 took 0.14 s less.
HELPER_FROM_FILES = 4_000
HELPER_FROM_BYTES = 64 * MIB
BATCH_FILES = 256
BATCH_BYTES = 8 * MIB  # a batch is closed at whichever comes first
MOST_PENDING = 32  # batches: the main thread plans ahead while the helper starts (8,192 jobs, a few MB)


@dataclass(frozen=True)
class Read:
    """A small file as its skip check read it: its MD5 (hex), and its content statistics when they are recorded."""

    md5: str
    stats: dict[str, Any] | None = None


def may_be_skipped(job: Job) -> bool:
    """The listing holds an object of the same size and an ETag, and the file is read whole (not in parts)."""
    return job.may_be_unchanged and job.source.size < MULTIPART_THRESHOLD


def worth_a_helper(listed: Iterable[RemoteObject], local_files: int, local_bytes: int) -> bool:
    """The listing's small objects and this run's files (a shard's, or a few new ones beside a full folder's) both
    reach the thresholds: the files a helper may check are at most the fewer of the two."""
    sizes = [listed_object.size for listed_object in listed if listed_object.size < MULTIPART_THRESHOLD]
    files, size = min(len(sizes), local_files), min(sum(sizes), local_bytes)
    return files >= HELPER_FROM_FILES and size >= HELPER_FROM_BYTES


def read_unchanged(sources: list[SourceFile], with_stats: bool) -> list[Read | None]:
    """Each file read as discovery saw it, or None when it cannot be (changed, unreadable): its upload says why."""
    return [read_one(source, with_stats) for source in sources]


def read_one(source: SourceFile, with_stats: bool) -> Read | None:
    stats = ContentStats() if with_stats else None
    try:
        data = read_whole(source)
        md5 = hashlib.md5(data).hexdigest()
        ensure_unchanged(source)
    except (OSError, FileChanged):
        return None
    feed(stats, data)
    return Read(md5, stats.summary() if stats else None)


def start_helper() -> cf.ProcessPoolExecutor | None:
    """A process for the checks, started now, with SIGINT and SIGTERM blocked from its first instruction on: a
    terminal's Ctrl-C, or a service manager's stop, reaches the whole process group, and the helper must neither die
    of it mid-batch nor print a traceback. The run's own signal handling ends it. None when this system cannot start
    one."""
    import multiprocessing  # here, not at start-up: 25-30 ms of imports that most runs do not need
    from multiprocessing import resource_tracker

    try:
        context = multiprocessing.get_context("spawn")
        resource_tracker.ensure_running()  # now: starting it unblocks SIGINT and SIGTERM in the thread that does
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            return started(cf.ProcessPoolExecutor(1, mp_context=context, initializer=exit_with_the_run))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    except (OSError, ImportError, RuntimeError):  # no /dev/shm for its locks, no process or thread left: no helper
        return None


def started(helper: cf.ProcessPoolExecutor) -> cf.ProcessPoolExecutor:
    """The helper's process started in this thread (not waited for: the main thread plans ahead meanwhile)."""
    try:
        helper.submit(int)
    except BaseException:
        helper.shutdown(wait=False, cancel_futures=True)
        raise
    return helper


def exit_with_the_run() -> None:
    """In the helper: a thread that ends it when the run's process is gone without shutting it down (a second
    Ctrl-C leaves at once, or the process was killed). The helper's worker holds both ends of the queue it waits on,
    so it would wait forever."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=exit_when_ended, args=(parent.sentinel,), daemon=True).start()


def exit_when_ended(sentinel: int) -> None:
    import multiprocessing.connection

    multiprocessing.connection.wait([sentinel])
    os._exit(0)


class SkipChecks:
    """read_unchanged on the helper, BATCH_FILES jobs at a time, or in the calling thread without one; the results
    come back in the order given. A batch the helper could not take, or did not answer, is checked here."""

    def __init__(self, with_stats: bool, stop: threading.Event, use_helper: bool) -> None:
        self.with_stats = with_stats
        self.stop = stop
        self.helper = start_helper() if use_helper else None
        self.helper_failed = False
        self.batch: list[Job] = []
        self.batch_bytes = 0
        self.pending: collections.deque[tuple[list[Job], cf.Future[list[Read | None]] | None]] = collections.deque()

    def __enter__(self) -> SkipChecks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Waits for the helper to end, unless it failed or the run was stopped: then the helper ends on its own
        (exit_with_the_run), and the run does not wait on a pool that Python 3.9 can leave hanging once a worker
        died (CPython gh-94777)."""
        if self.helper is not None:
            self.helper.shutdown(wait=not (self.helper_failed or self.stop.is_set()), cancel_futures=True)

    def add(self, job: Job) -> Iterator[tuple[Job, Read | None]]:
        """Takes the job; gives back the jobs whose checks are done by now (without a helper: this one)."""
        if self.helper is None:
            yield job, read_one(job.source, self.with_stats)
            return
        self.batch.append(job)
        self.batch_bytes += job.source.size
        if len(self.batch) >= BATCH_FILES or self.batch_bytes >= BATCH_BYTES:
            self.close_batch(self.helper)
        while self.pending and (self.oldest_done() or len(self.pending) > MOST_PENDING):
            yield from self.oldest()

    def rest(self) -> Iterator[tuple[Job, Read | None]]:
        """Every job taken and not yet given back, waiting for their checks (unless the run is stopped)."""
        if self.helper is not None:
            self.close_batch(self.helper)
        while self.pending:
            yield from self.oldest()

    def close_batch(self, helper: cf.ProcessPoolExecutor) -> None:
        if not self.batch:
            return
        try:
            future = helper.submit(read_unchanged, [job.source for job in self.batch], self.with_stats)
        except RuntimeError:  # the helper died (BrokenProcessPool): oldest() checks the batch here
            self.helper_failed, future = True, None
        self.pending.append((self.batch, future))
        self.batch, self.batch_bytes = [], 0

    def oldest_done(self) -> bool:
        future = self.pending[0][1]
        return future is None or future.done()

    def oldest(self) -> Iterator[tuple[Job, Read | None]]:
        jobs, future = self.pending.popleft()
        reads = self.answer(future)
        if reads is None:
            stopped = self.stop.is_set()
            reads = [None] * len(jobs) if stopped else read_unchanged([job.source for job in jobs], self.with_stats)
        yield from zip(jobs, reads)

    def answer(self, future: cf.Future[list[Read | None]] | None) -> list[Read | None] | None:
        """The helper's reads of a batch; None when it gave none, or the run was stopped before it did."""
        if future is None:
            return None
        if self.stop.is_set() and not future.done():
            future.cancel()
            return None
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - whatever ended the helper's check, the check made here has the last word
            self.helper_failed = True
            return None
