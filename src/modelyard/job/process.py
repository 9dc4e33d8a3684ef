"""The job worker of `modelyard serve`, in a process of its own: `modelyard worker` started as the server's child,
started again if it dies, and stopped with the server.

In a thread of the server's process, the worker shared the interpreter lock with the API: while it validated
versions (ORM transactions, file reads and hashing), the event loop waited for its turns. With 16 concurrent creates
of versions on one SQLite process, 266-389 versions/s with the worker as a thread, 588-596/s with it as a process
(bench/RESULTS.md). A child that finds its parent gone (the server killed with SIGKILL) stops by itself
(`watch_parent`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("modelyard.worker")

# The server's pid, given to its worker process: the worker stops when its parent is no longer this process.
PARENT_ENV = "MODELYARD_WORKER_PARENT"
RESTART_DELAY_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 30.0


class WorkerProcess:
    """`modelyard worker` as a child of this process, with this process's environment."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self.argv = argv or [sys.executable, "-m", "modelyard", "worker"]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, delay: float = 0.0) -> None:
        """Start the worker process after `delay` seconds (unless stopped first), and watch it from then on."""
        threading.Thread(target=self._watch, args=(delay,), name="modelyard-worker-watch", daemon=True).start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                env = {**os.environ, PARENT_ENV: str(os.getpid())}
                # A process group of its own: Ctrl-C in a terminal reaches the server alone, which then stops it.
                self._process = subprocess.Popen(self.argv, env=env, process_group=0)  # noqa: S603 (our command)

    def _watch(self, delay: float) -> None:
        if self._stopping.wait(delay):
            return
        self._spawn()
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("the job worker process exited with code %s; starting it again", code)
            if not self._stopping.wait(RESTART_DELAY_SECONDS):
                self._spawn()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, as for `modelyard worker` (the jobs it is running keep their leases); SIGKILL after `timeout`."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_on_signals(worker: WorkerProcess) -> None:
    """Stop `worker` before SIGTERM or SIGINT ends this process. uvicorn, once it has shut down on either, raises the
    signal again for the handler it found in place, so that the process ends as the signal ends it: without this,
    that would end the server before code after `uvicorn.run` could stop the worker."""

    def handler(signum: int, frame: FrameType | None) -> None:
        worker.stop()
        if signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as without this handler
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def watch_parent(stop: Callable[[], None], poll_seconds: float = 1.0) -> threading.Thread | None:
    """In a worker started by `WorkerProcess`: call `stop` once the server that started it is gone (its parent pid
    changes when the parent dies). None if this worker was not started so."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return None
    expected = int(parent)

    def watch() -> None:
        done = threading.Event()
        while not done.wait(poll_seconds):
            if os.getppid() != expected:
                log.warning("the server that started this worker is gone: stopping")
                stop()
                return

    thread = threading.Thread(target=watch, name="modelyard-parent-watch", daemon=True)
    thread.start()
    return thread
