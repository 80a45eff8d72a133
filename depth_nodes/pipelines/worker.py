"""Latest-frame processing: a worker thread that always works on the newest input.

The subscription side calls :meth:`LatestFrameWorker.submit` for every input; if the worker is
still busy, the pending input is *replaced* (and counted as dropped), so a slow model never
builds a queue of stale frames. Exceptions from the processing function go to ``on_error``
and the worker carries on with the next input.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["LatestFrameWorker"]


class LatestFrameWorker:
    def __init__(self, process: Callable[[Any], None], on_error: Callable[[BaseException, Any], None],
                 name: str = "latest-frame-worker"):
        self._process = process
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._stop = False
        self.submitted = 0
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        with self._cond:
            self.submitted += 1
            if self._has_pending:
                self.dropped += 1
            self._pending, self._has_pending = item, True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
            try:
                self._process(item)
            except BaseException as exc:  # noqa: BLE001 - reported, worker survives
                self._on_error(exc, item)
            finally:
                with self._cond:
                    self.processed += 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending (for tests and benchmarks)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._has_pending, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
