"""SQLite's WAL checkpoints, off the request path: a thread of each server process copies what was committed into the
database file every quarter of a second, when something was.

Left to SQLite, a checkpoint runs inside the commit that takes the WAL past 1,000 pages: that commit copies the pages
and waits for two fsyncs. A create commits about a dozen pages, so one create in 80 paid for it, and on the event
loop (where the short writes run, modelyard.kit.routing.inline_write) every request in flight waited with it.
Measured on the 2-core bench machine (bench/RESULTS.md): a commit cost 336 µs on average with those checkpoints and
147 µs without them, and one server process answered 16-30% more creates per second with this thread doing them.

The writers keep SQLite's own checkpoint as a safety net, at `WRITER_CHECKPOINT_PAGES` (about 40 MB of WAL), for a
process that runs no checkpointer (`modelyard worker`, the CLI) or one that falls behind. What a checkpoint leaves
on disk is the same either way; a commit's durability does not depend on it (with `synchronous=NORMAL` in WAL mode
the WAL is synced at checkpoints): this thread syncs it within a quarter of a second of a commit, where SQLite's
own checkpoint could wait for hundreds of commits."""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("modelyard.db")

CHECKPOINT_SECONDS = 0.25
WRITER_CHECKPOINT_PAGES = 10_000


class WalCheckpointer:
    """A daemon thread that runs `PRAGMA wal_checkpoint(PASSIVE)` on the database file `path` every `every` seconds
    when a commit happened since the last one (`PRAGMA data_version`, on a connection of its own). A passive
    checkpoint never waits: it copies what no reader still needs, and leaves the rest for the next round; another
    process's checkpoint running at the same time makes it skip a round."""

    def __init__(self, path: str, every: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.every = every
        self.rounds = 0  # checkpoints run (a round with no commit since the last runs none)
        self.last: tuple[int, int, int] | None = None  # (busy, frames in the WAL, frames checkpointed), as SQLite says
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        seen = None
        while not self._stop.wait(self.every):
            try:
                if connection is None:
                    connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                version = connection.execute("PRAGMA data_version").fetchone()[0]
                if version == seen:
                    continue
                busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.last = (busy, frames, copied)
                self.rounds += 1
                # Seen only once the checkpoint copied everything: frames a reader still needed are copied next round.
                seen = version if not busy and frames == copied else None
            except sqlite3.Error as exc:
                # The writers' own checkpoints take over meanwhile; try again next round on a new connection.
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
                if connection is not None:
                    connection.close()
                connection, seen = None, None
        if connection is not None:
            connection.close()
