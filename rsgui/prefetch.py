"""Read the next batch while the caller works on this one.

Indexing alternates reading a batch (GDAL and file reads, which release the GIL) and computing
its codes (numpy, torch). On two cores the two can overlap: one thread reads ahead, at most
``depth`` batches, while the caller computes. Results come back in order, an error is raised
where the batch would have been, and closing the iterator stops the reader at its next batch.
``RSGUI_PREFETCH=0`` turns it off.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")

_END = object()


def enabled() -> bool:
    return os.environ.get("RSGUI_PREFETCH", "1") != "0"


def prefetched(fn: Callable[[A], T], items: Iterable[A], depth: int = 2) -> Iterator[T]:
    """``fn(item)`` for each item, computed one thread ahead of the consumer."""
    items = list(items)
    if len(items) < 2 or not enabled():
        for it in items:
            yield fn(it)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for it in items:
                if stop.is_set() or not put((True, fn(it))):
                    return
        except BaseException as e:  # handed to the consumer, raised in its thread
            put((False, e))
            return
        put((True, _END))

    thread = threading.Thread(target=work, name="rsgui-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is _END:
                return
            yield value
    finally:
        stop.set()
        thread.join()
