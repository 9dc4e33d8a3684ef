"""A per-process cache of who each caller is (`Principal`, from their token's hash) and of their role in the
workspaces they used, so a request looks neither up in the database every time; and the invalidation that keeps
both correct.

Every change that can revoke or alter a principal or what it may reach (a token revoked, a user updated or deleted,
a membership added, changed or removed) calls `principals_changed(session, user_id)` inside its transaction; a
change to a workspace itself (updated, deleted) calls `principals_changed(session, None)`, which means everyone:

- after the commit, every cache of this process drops that user's entries (nothing happens on a rollback);
- on PostgreSQL the same transaction sends `NOTIFY modelyard_principals, '<user_id>'` (an empty payload for
  everyone), which PostgreSQL delivers only if it commits; every server process listens on that channel
  (`PrincipalListener`) and drops the user's entries too. While a listener is not connected its cache answers
  nothing, and on (re)connecting it starts empty, so a notification missed during an outage cannot leave a revoked
  token or membership usable;
- on a SQLite file, the commit also bumps a counter in a small file beside the database (`<database>-principals`,
  `SharedRevision`), which every process serving that database maps into memory and reads on each cache lookup
  (a fraction of a microsecond): a process that sees the counter move drops its whole cache.

A lookup takes the cache's generation before it reads the database and stores its answer only if no invalidation
happened meanwhile, so a read that raced a revocation cannot put the old principal or role back. A token's own
expiry is checked on every hit, and entries also expire after `ttl` seconds as a last safety net. Only what was
found is kept: a workspace that does not exist, or that the caller is not a member of, is looked up every time."""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from modelyard.db.base import utcnow
from modelyard.db.urls import sqlite_file

if TYPE_CHECKING:
    from modelyard.auth import Principal

log = logging.getLogger("modelyard.auth")

CHANNEL = "modelyard_principals"
_CHANGED = "modelyard_principals_changed"
_CACHES: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    token_expires_at: datetime | None
    stored_at: float


@dataclass(frozen=True)
class WorkspaceRole:
    """A workspace's row as a member found it, and the member's role there (None: not a member, for an admin)."""

    workspace: dict[str, Any]
    role: str | None
    stored_at: float


class SharedRevision:
    """A counter shared by every process that maps the same file: bumped after each commit that changes
    principals, read on each lookup. Writers serialise on an flock; readers need no lock (an aligned 8-byte value
    in a shared mapping)."""

    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < 8:
                    os.ftruncate(fd, 8)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, 8)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def read(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def bump(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._map[:8] = ((self.read() + 1) % 2**64).to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


_SHARED: dict[str, SharedRevision] = {}
_SHARED_LOCK = threading.Lock()


def shared_revision(database_url: str | sa.URL) -> SharedRevision | None:
    """The revision file of a SQLite database file (one per path in this process); None for PostgreSQL and for
    in-memory SQLite, which only one process can open."""
    database = sqlite_file(database_url)
    if database is None:
        return None
    path = database + "-principals"
    with _SHARED_LOCK:
        found = _SHARED.get(path)
        if found is None:
            found = _SHARED[path] = SharedRevision(path)
        return found


class PrincipalCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, shared: SharedRevision | None = None) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.shared = shared
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._roles: OrderedDict[tuple[str, str], WorkspaceRole] = OrderedDict()  # by (user id, workspace name)
        self._lock = threading.Lock()
        self._generation = 0
        self._suspended = False
        self._seen = shared.read() if shared is not None else 0
        _CACHES.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and not self._suspended

    def _follow_shared(self) -> None:
        """Drop everything when another process (or this one) committed a change to principals. Holds _lock."""
        if self.shared is not None:
            seen = self.shared.read()
            if seen != self._seen:
                self._seen = seen
                self._generation += 1
                self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._roles.clear()

    def generation(self) -> int:
        with self._lock:
            self._follow_shared()
            return self._generation

    def get(self, token_hash: str) -> Principal | None:
        if not self.enabled:
            return None
        with self._lock:
            self._follow_shared()
            entry = self._entries.get(token_hash)
            if entry is None:
                return None
            if time.monotonic() - entry.stored_at > self.ttl or (
                entry.token_expires_at is not None and entry.token_expires_at <= utcnow()
            ):
                del self._entries[token_hash]
                return None
            self._entries.move_to_end(token_hash)
            return entry.principal

    def put(self, token_hash: str, principal: Principal, token_expires_at: datetime | None, generation: int) -> None:
        """Remember a lookup that began at `generation` (see `generation()`), unless an invalidation came since."""
        if not self.enabled:
            return
        with self._lock:
            self._follow_shared()
            if generation != self._generation:
                return
            self._entries[token_hash] = _Entry(principal, token_expires_at, time.monotonic())
            self._entries.move_to_end(token_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def role(self, user_id: str, workspace: str) -> WorkspaceRole | None:
        """The workspace named `workspace` and `user_id`'s role in it, as last looked up, if kept."""
        if not self.enabled:
            return None
        key = (user_id, workspace)
        with self._lock:
            self._follow_shared()
            found = self._roles.get(key)
            if found is None:
                return None
            if time.monotonic() - found.stored_at > self.ttl:
                del self._roles[key]
                return None
            self._roles.move_to_end(key)
            return found

    def put_role(self, user_id: str, name: str, workspace: dict[str, Any], role: str | None, generation: int) -> None:
        """Remember the row `workspace` of the workspace looked up as `name` and `user_id`'s role in it, found by a
        lookup that began at `generation`, unless an invalidation came since."""
        if not self.enabled:
            return
        key = (user_id, name)
        with self._lock:
            self._follow_shared()
            if generation != self._generation:
                return
            self._roles[key] = WorkspaceRole(dict(workspace), role, time.monotonic())
            self._roles.move_to_end(key)
            while len(self._roles) > self.max_entries:
                self._roles.popitem(last=False)

    def invalidate(self, user_ids: Iterable[str] | None = None) -> None:
        """Drop the entries of these users (of everyone when None)."""
        with self._lock:
            self._generation += 1
            if user_ids is None:
                self._clear()
                return
            gone = set(user_ids)
            for key in [k for k, e in self._entries.items() if e.principal.user_id in gone]:
                del self._entries[key]
            for role_key in [k for k in self._roles if k[0] in gone]:
                del self._roles[role_key]

    def suspend(self) -> None:
        """Answer nothing until `resume()`: used while invalidations from other processes cannot be heard."""
        with self._lock:
            self._suspended = True
            self._generation += 1
            self._clear()

    def resume(self) -> None:
        with self._lock:
            self._suspended = False
            self._generation += 1
            self._clear()

    def __len__(self) -> int:
        return len(self._entries)


def principals_changed(session: Session, user_id: str | None) -> None:
    """Call inside the transaction that revokes a token, changes or deletes a user, or adds, changes or removes a
    membership of theirs (`user_id`); or that changes or deletes a workspace (None: every user's entries)."""
    changed: set[str | None] | None = session.info.get(_CHANGED)
    if changed is None:
        changed = session.info[_CHANGED] = set()
        event.listen(session, "after_commit", _after_commit, once=True)
        event.listen(session, "after_rollback", _after_rollback, once=True)
    if user_id in changed:
        return
    changed.add(user_id)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_notify(CHANNEL, user_id or "")))


def _after_commit(session: Session) -> None:
    changed: set[str | None] | None = session.info.pop(_CHANGED, None)
    if changed:
        shared = shared_revision(session.get_bind().engine.url)
        if shared is not None:
            shared.bump()
        users = None if None in changed else [u for u in changed if u is not None]
        for cache in list(_CACHES):
            cache.invalidate(users)


def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class PrincipalListener:
    """On PostgreSQL: a thread that LISTENs on `CHANNEL` and drops the named users from `cache`. The cache is
    suspended until the first connection succeeds and whenever the connection is lost."""

    def __init__(self, database_url: str, cache: PrincipalCache, *, retry_seconds: float = 1.0) -> None:
        url = sa.engine.make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self.cache = cache
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-principals", daemon=True)

    def start(self) -> None:
        self.cache.suspend()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.cache.resume()
                    self.connected.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.cache.invalidate([note.payload] if note.payload else None)
            except Exception as exc:
                log.warning("principal cache listener disconnected (%s); cache suspended", exc)
            finally:
                self.connected.clear()
                self.cache.suspend()
            self._stop.wait(self.retry_seconds)
