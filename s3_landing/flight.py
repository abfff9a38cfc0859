"""Work in flight: items handed to a thread pool a few at a time and reported in the calling thread as they finish.
The one loop of uploads and of --check, with the same bound on what waits and the same grace after a signal."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import queue
import threading
import time
from typing import Callable, Generic, TypeVar

STOP_GRACE_SECONDS = 5.0  # after SIGINT/SIGTERM, how long work in flight may still finish (docker stop gives 10)
WAIT_SECONDS = 0.5  # the longest a wait goes without looking at the stop event

Item = TypeVar("Item")
Result = TypeVar("Result")


class Flight(Generic[Item, Result]):
    """At most `window` items handed to `threads` threads at once. Each result is reported in the calling thread, as
    its work finishes or, when ordered, in the order the items were given; a finished future is queued by its
    pool thread, so waiting costs the same with 2 or 128 items in flight."""

    def __init__(
        self,
        threads: int,
        window: int,
        stop: threading.Event,
        report: Callable[[Result], None],
        ordered: bool = False,
        name: str = "work",
    ) -> None:
        self.pool = cf.ThreadPoolExecutor(threads, thread_name_prefix=name)
        self.window = window
        self.stop = stop
        self.report = report
        self.ordered = ordered
        self.items: dict[cf.Future[Result], Item] = {}
        self.order: collections.deque[cf.Future[Result]] = collections.deque()
        self.done: set[cf.Future[Result]] = set()
        self.finished: queue.SimpleQueue[cf.Future[Result]] = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self.items)

    def __enter__(self) -> Flight[Item, Result]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)

    def make_room(self) -> None:
        """Wait until the window has room (reporting what finishes meanwhile), or a stop."""
        while len(self.items) >= self.window and not self.stop.is_set():
            self.report_finished(WAIT_SECONDS)

    def submit(self, item: Item, work: Callable[[], Result]) -> None:
        future = self.pool.submit(work)
        self.items[future] = item
        if self.ordered:
            self.order.append(future)
        future.add_done_callback(self.finished.put)

    def report_finished(self, timeout: float) -> None:
        """Report what has finished by now (in order: what has finished before it too), waiting up to timeout for
        the first one."""
        try:
            self.done.add(self.finished.get(timeout=timeout))
            while True:
                self.done.add(self.finished.get_nowait())
        except queue.Empty:
            pass
        if not self.ordered:
            for future in list(self.done):
                self.hand_over(future)
        while self.order and self.order[0] in self.done:
            self.hand_over(self.order.popleft())

    def hand_over(self, future: cf.Future[Result]) -> None:
        self.done.discard(future)
        del self.items[future]
        self.report(future.result())

    def finish(self, unfinished: Callable[[Item], None]) -> None:
        """Wait for the work in flight; after a signal, only STOP_GRACE_SECONDS, then hand each item still in flight
        to unfinished. Threads stuck on a silent server are left behind (leaving the context does not wait for them
        after a signal): the command ends the process without them."""
        deadline: float | None = None
        while self.items:
            if self.stop.is_set() and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_SECONDS
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.report_finished(0.2 if deadline is not None else WAIT_SECONDS)
        for item in self.items.values():
            unfinished(item)
        self.items.clear()
