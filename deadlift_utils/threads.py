"""Two small thread helpers that let extraction use both cores with flat memory.

OpenCV's decoder, MediaPipe's inference (ctypes calls), cv2 image work and the pipe to the
ffmpeg encoder all release the GIL, so decoding the next frames, running the pose model on
the current one and measuring/drawing the previous ones overlap in threads. Queues are
bounded: a long video holds at most a few frames in memory per stage.

`prefetch(iterable, size)`: iterate in a background thread, `size` items ahead.
`Worker(fn, size)`: call `fn(item)` for every `put(item)` in order, in one background thread.
Both re-raise the background thread's exception in the caller.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(iterable: Iterable, size: int = 4) -> Iterator:
    """Yield the items of `iterable`, produced up to `size` ahead in a background thread.

    Closing the generator early (break, an exception in the caller) stops the producer and
    waits for it, so a video capture is released before this returns."""
    q: queue.Queue = queue.Queue(maxsize=max(1, int(size)))
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                if not _put_unless(stop, q, item):
                    break
        except BaseException as e:  # handed to the consumer, raised there
            _put_unless(stop, q, _Failed(e))
            return
        finally:
            close = getattr(iterable, "close", None)
            if stop.is_set() and close is not None:
                close()  # a generator's finally (e.g. cap.release()) runs in its own thread
        _put_unless(stop, q, _END)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def _put_unless(stop: threading.Event, q: queue.Queue, item) -> bool:
    """Put `item`, waiting while the queue is full, unless `stop` is set first (-> False)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class Worker:
    """Run `fn(item)` for each `put(item)`, in order, in one background thread.

    `put` blocks while `size` items wait (flat memory) and re-raises the worker's exception
    as soon as it has one; `close()` waits for the queue to drain and re-raises too.
    `close(wait=False)` (after the caller failed) drops what is queued and stops."""

    def __init__(self, fn: Callable, size: int = 4, name: str = "worker"):
        self._fn = fn
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(size)))
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is not None or self._abort.is_set():
                continue  # drain without work so a blocked put() returns
            try:
                self._fn(item)
            except BaseException as e:
                self._error = e

    def put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self, wait: bool = True) -> None:
        if not wait:
            self._abort.set()
        while self._thread.is_alive():
            try:
                self._q.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        if wait and self._error is not None:
            raise self._error
