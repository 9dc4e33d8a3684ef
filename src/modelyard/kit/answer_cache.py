"""Serialised answers of the lists that pipelines and serving fleets poll, kept while the database's change token
(modelyard.db.changes) stays the same. Any commit, by any process, changes the token, so a cached answer is never
older than the database: the cache only saves building the same answer again while nothing has changed.

Entries are kept least recently used first within a byte budget; an answer larger than a quarter of it is not kept.
Each answer carries an ETag (a digest of its bytes), so that a poller that sends `If-None-Match` gets a 304 without
the body while nothing has changed (modelyard.kit.routing.not_modified).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelyard.db.changes import ChangeWatch


# For the OpenAPI document of an endpoint that answers through Answer.response.
NOT_MODIFIED: dict[int | str, dict[str, object]] = {
    304: {"description": "Not modified: `If-None-Match` named the current `ETag` (no body)"}
}


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Answer:
        return cls(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def response(self) -> Response:
        """The answer with its ETag (the route turns it into a 304 for a matching `If-None-Match`)."""
        return Response(self.body, media_type="application/json", headers={"ETag": self.etag})


class AnswerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Answer] = OrderedDict()
        self._token: str | None = None
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def answer(self, key: Hashable, session: Session, changes: ChangeWatch, build: Callable[[], bytes]) -> Answer:
        """The kept answer for `key` while the database is unchanged, else `build()` (in `session`), kept."""
        token = changes.token(session) if self.enabled else None  # before anything of the answer is read
        found = self.get(key, token)
        if found is None:
            found = Answer.of(build())
            self.put(key, token, found)
        return found

    def get(self, key: Hashable, token: str | None) -> Answer | None:
        """The answer stored for `key` under this very token, if any."""
        if token is None or not self.enabled:
            return None
        with self._lock:
            found = self._entries.get(key) if token == self._token else None
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, token: str | None, answer: Answer) -> None:
        """Keep an answer built after `token` was read. A new token empties the cache (all it held is older)."""
        if token is None or not self.enabled or len(answer.body) * 4 > self.max_bytes:
            return
        with self._lock:
            if token != self._token:
                self._entries.clear()
                self._bytes = 0
                self._token = token
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = answer
            self._bytes += len(answer.body)
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.body)

    def stats(self) -> tuple[int, int, int]:
        """Hits, misses (answers built while caching was possible) and bytes kept, for /metrics."""
        with self._lock:
            return self.hits, self.misses, self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._token = None
