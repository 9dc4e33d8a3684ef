"""Serialised answers of the lists that pipelines and serving fleets poll, kept while the database's change token
(modelyard.db.changes) stays the same. Any commit, by any process, changes the token, so a cached answer is never
older than the database: the cache only saves building the same answer again while nothing has changed.

Entries are kept least recently used first within a byte budget; an answer larger than a quarter of it is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelyard.db.changes import ChangeWatch


class AnswerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._token: str | None = None
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def answer(self, key: Hashable, session: Session, changes: ChangeWatch, build: Callable[[], bytes]) -> bytes:
        """The kept answer for `key` while the database is unchanged, else `build()` (in `session`), kept."""
        token = changes.token(session) if self.enabled else None  # before anything of the answer is read
        body = self.get(key, token)
        if body is None:
            body = build()
            self.put(key, token, body)
        return body

    def get(self, key: Hashable, token: str | None) -> bytes | None:
        """The answer stored for `key` under this very token, if any."""
        if token is None or not self.enabled:
            return None
        with self._lock:
            body = self._entries.get(key) if token == self._token else None
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, token: str | None, body: bytes) -> None:
        """Keep an answer built after `token` was read. A new token empties the cache (all it held is older)."""
        if token is None or not self.enabled or len(body) * 4 > self.max_bytes:
            return
        with self._lock:
            if token != self._token:
                self._entries.clear()
                self._bytes = 0
                self._token = token
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def stats(self) -> tuple[int, int, int]:
        """Hits, misses (answers built while caching was possible) and bytes kept, for /metrics."""
        with self._lock:
            return self.hits, self.misses, self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._token = None
