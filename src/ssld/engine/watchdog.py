"""A stall watchdog: training that stops making progress ends with one line instead of hanging silently.

Python runs signal handlers only between bytecodes of the main thread, so a main thread stuck in native code (a
hung DataLoader worker, a collective whose peer died, a kernel that spins) ignores SIGTERM and Ctrl-C for ever.
This watchdog is a daemon thread that needs no help from the main thread:

- the training and evaluation loops call :func:`beat` after every batch; no beat for ``limit`` seconds ends the
  process (exit code 3) with one line naming ``Global.stall_timeout``;
- ``signal.set_wakeup_fd`` lets the thread see a SIGTERM/SIGINT even while the main thread is stuck: when no beat
  follows within ``grace`` seconds, the process ends at once (exit code 128 + the signal).

Checkpoints are written to a temporary file and renamed, so ending the process at any point leaves the last
complete checkpoint in place.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

_last_beat = time.monotonic()

EXIT_STALLED = 3


def beat() -> None:
    """Record progress (a batch finished). Cheap: one clock read and one store."""
    global _last_beat
    _last_beat = time.monotonic()


def _die(message: str, code: int) -> None:
    """Write one line to stderr without touching locks the stuck main thread may hold, then exit at once."""
    try:
        os.write(2, f"ssld: error: {message}\n".encode())
    finally:
        os._exit(code)


class Watchdog:
    """Context manager around a training or evaluation run (main thread only; a no-op elsewhere or when off).

    ``limit`` is the longest wait for one batch in seconds (0 or None: no limit); ``where`` says what was running
    and where its last checkpoint is, for the message.
    """

    def __init__(self, limit: float | None, where: str, grace: float = 30.0, poll: float = 1.0) -> None:
        self.limit = float(limit or 0)
        self.where = where
        self.grace = grace
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._old_fd = -1

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            return self
        beat()
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        try:
            self._old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main interpreter
            reader.close()
            writer.close()
            return self
        self._sockets = (reader, writer)
        self._thread = threading.Thread(target=self._watch, name="ssld-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is None or self._sockets is None:
            return
        self._stop.set()
        self._thread.join()
        signal.set_wakeup_fd(self._old_fd)
        for s in self._sockets:
            s.close()
        self._thread = None

    def _watch(self) -> None:
        assert self._sockets is not None
        reader = self._sockets[0]
        signalled: tuple[int, float] | None = None
        while not self._stop.is_set():
            ready, _, _ = select.select([reader], [], [], self.poll)
            now = time.monotonic()
            if ready:
                try:
                    data = reader.recv(64)
                except OSError:
                    data = b""
                if data and signalled is None and data[-1] in (signal.SIGTERM, signal.SIGINT):
                    signalled = (data[-1], now)
            if signalled is not None and _last_beat < signalled[1] and now - signalled[1] > self.grace:
                name = signal.Signals(signalled[0]).name
                _die(f"{name} received, but no batch finished in the {self.grace:.0f} s after it (the main thread is "
                     f"stuck in native code); stopping now. {self.where}", 128 + signalled[0])
            if self.limit and now - _last_beat > self.limit:
                _die(f"no batch finished in {self.limit:.0f} s (Global.stall_timeout): a data-loader worker, a "
                     f"collective or a kernel is stuck; stopping. {self.where}", EXIT_STALLED)
