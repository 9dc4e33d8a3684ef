"""The request boundary: one database session per request, one commit when the endpoint succeeded, a rollback
otherwise; the JSON body size limit; and `Idempotency-Key` replays. Every API router uses `TransactionalRoute`.

The commit happens before the response is sent, so a client never sees a 2xx for a change that did not commit
(FastAPI's yield dependencies may run their exit code after the response has gone out). A write whose endpoint is a
plain function commits in the endpoint's own thread, the moment it returns (`_commit_on_return`), or, for the short
writes marked `inline_write` on SQLite, on the event loop in its turn on the writer lock (`_inline_in_turn`). With an
`Idempotency-Key`, or when the endpoint is a coroutine, the commit follows the response, which the key's record
stores with the change. An endpoint marked `fast_path` answers its common case from the request before FastAPI's own
handling (a model's create then goes in without the session: one statement on PostgreSQL, a transaction on a
connection of its own in the write turn on SQLite)."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from contextvars import ContextVar
from enum import Enum
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar, cast

import orjson
from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Depends, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.db.reads import AsyncReader, Reader
from modelyard.db.writer_lock import WriteTurnBusy
from modelyard.errors import ERROR_RESPONSES, PayloadTooLarge
from modelyard.kit import idempotency, json_numbers
from modelyard.kit.answer_cache import Answer
from modelyard.kit.etag import header_matches

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
STREAMED_BODY = "x-modelyard-streamed-body"


async def read_body_limited(request: Request, limit: int) -> None:
    """Read the body into the request (where FastAPI will find it), refusing it with 413 past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    request._body = b"".join(chunks)


def runs_inline(request: Request) -> bool:
    """Whether this request's database work may run on the event loop instead of in a worker thread: reads on
    SQLite. A WAL reader never waits for a lock and an indexed lookup takes microseconds, less than handing the
    call to a thread and back; writes (which may wait for SQLite's write lock) and PostgreSQL (a network round
    trip per query) go to a thread. (The prebuilt reads of `run_prebuilt` and `cached_answer`'s token are awaited
    on the loop on PostgreSQL too.)"""
    return request.method in SAFE_METHODS and bool(request.app.state.ctx.db.is_sqlite)


async def run_db(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a short database call (an access check, a lookup by key) where `runs_inline` says it belongs; a read on
    PostgreSQL goes to one of the process's read threads (`in_read_thread`)."""
    if runs_inline(request):
        return fn(*args, **kwargs)
    if request.method in SAFE_METHODS:
        return await in_read_thread(fn, *args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


async def run_read(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run prebuilt reads (modelyard.db.reads, no session): on the event loop on SQLite whatever the request's
    method, since they never wait for the write lock; in a read thread on PostgreSQL (`in_read_thread`)."""
    if request.app.state.ctx.db.is_sqlite:
        return fn(*args, **kwargs)
    return await in_read_thread(fn, *args, **kwargs)


async def run_prebuilt(
    request: Request,
    on_sqlite: Callable[Concatenate[Reader, P], T],
    on_postgres: Callable[Concatenate[AsyncReader, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Prebuilt reads (modelyard.db.reads) on the event loop, without a thread hand-off: `on_sqlite` with a Reader
    (a read is a call into the library, and a WAL reader never waits), `on_postgres` awaited with an AsyncReader on
    one of psycopg's asyncio connections (Database.async_reads). For the reads behind every request of a kind
    (the workspace access checks, GET of a model): in a read thread, a GET of a model on PostgreSQL spent more in
    the hand-off to the thread and back than in its statement (bench/RESULTS.md)."""
    db = request.app.state.ctx.db
    if db.async_reads is None:
        with db.reading() as reader:
            return on_sqlite(reader, *args, **kwargs)
    async with db.async_reads.reading() as async_reader:
        return await on_postgres(async_reader, *args, **kwargs)


async def cached_answer(request: Request, key: Hashable, session: Session, build: Callable[[], bytes]) -> Response:
    """A polled list's answer: the one kept in the answer cache (kit.answer_cache) while the database's change
    token is the same, else `build()`'s (which reads through `session`), kept.

    On PostgreSQL the token is read on the event loop (Database.async_reads), so a kept answer goes out without a
    thread hand-off or a transaction; only a miss builds the answer, in a read thread, in the session's snapshot,
    which is taken after the token was read (an answer at least as new as its token). On SQLite it all runs on the
    loop (run_db)."""
    ctx = request.app.state.ctx
    reads = ctx.db.async_reads
    if reads is None or not ctx.answers.enabled:
        return await run_db(request, lambda: ctx.answers.answer(key, session, ctx.db.changes, build).response())
    async with reads.reading() as reader:
        token = await ctx.db.changes.token_async(reader)
    found = ctx.answers.get(key, token)
    if found is None:
        found = Answer.of(await run_db(request, build))
        ctx.answers.put(key, token, found)
    return cast(Response, found.response())


# Reads on PostgreSQL run in at most this many threads at once per server process (the rest queue, in order).
READ_THREADS = 8
_READ_LIMITER: RunVar[CapacityLimiter] = RunVar("modelyard_read_threads")


async def in_read_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a read in a worker thread, at most `READ_THREADS` of them at once in this process.

    A read waits for no lock, only for its round trips to the database, so a few threads keep up with the event
    loop. Handed to the general pool (40 threads), 32 concurrent GETs all woke a thread of their own, and the
    threads fought over the GIL: on the bench machine, a GET by name on PostgreSQL had a p99 of 280-570 ms. With
    8 threads, 70-95 ms, and 12-65% more GETs per second, in one process or two (bench/RESULTS.md)."""
    try:
        limiter = _READ_LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(READ_THREADS)
        _READ_LIMITER.set(limiter)
    return await to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes",
        error_code="BODY_TOO_LARGE",
        solution_msg="Send a smaller body, or raise MODELYARD_MAX_JSON_BYTES on the server",
    )


def _has_body(request: Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


_SESSION = "modelyard.session"
# The request whose sync endpoint commits its session when it returns (set by the boundary, read in the endpoint's
# thread, which runs in a copy of the boundary's context).
_COMMIT_ON_RETURN: ContextVar[Request | None] = ContextVar("modelyard_commit_on_return", default=None)


def request_session(request: Request) -> Session:
    """The request's database session, opened on first use: a request answered from prebuilt reads
    (modelyard.db.reads) or from caches never opens one."""
    session: Session | None = request.scope.get(_SESSION)
    if session is None:
        session = request.app.state.ctx.db.session(write=request.method not in SAFE_METHODS)
        request.scope[_SESSION] = session
    return session


def not_modified(request: Request, response: Response) -> Response:
    """A 304 without a body in place of a 200 whose `ETag` the caller's `If-None-Match` names (RFC 9110 13.1.2):
    every GET that answers an ETag (one resource, or a polled list) is a conditional GET."""
    etag = response.headers.get("etag")
    if_none_match = request.headers.get("if-none-match")
    if etag is None or not if_none_match or not header_matches(if_none_match, etag):
        return response
    return Response(status_code=304, headers={"ETag": etag})


def _commit_on_return(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` (a plain function, which FastAPI runs in a worker thread), committing the request's session in
    that thread as soon as it returns an answer that is not an error.

    On SQLite a write transaction holds the database's one write lock (modelyard.db.writer_lock) until it ends.
    Committed here, it ends with the endpoint's own work. Committed after the response, it would also span the
    hand-back to the event loop, the loop's turn for it among every other request, and a second thread hand-off:
    several milliseconds under load, in which no other writer, of this process or another, may start. (With 16
    concurrent creates on the bench machine: 15-20% more creates per second, in one process or two.)

    The answer is serialised after the commit, so an answer that fails its response model (a bug) is a 500 for a
    change that stays: the promise kept is the other one, no 2xx for a change that did not commit."""

    @functools.wraps(endpoint)
    def commits(*args: Any, **kwargs: Any) -> Any:
        answer = endpoint(*args, **kwargs)
        request = _COMMIT_ON_RETURN.get()
        if request is not None and not (isinstance(answer, Response) and answer.status_code >= 400):
            session: Session | None = request.scope.get(_SESSION)
            if session is not None:
                session.commit()
        return answer

    commits.commits_on_return = True  # type: ignore[attr-defined]
    return commits


def inline_write(endpoint: Callable[P, T]) -> Callable[P, T]:
    """Mark a write endpoint (a plain function) whose work is a short database transaction and nothing else: no
    files, no network, no waiting. On SQLite it runs on the event loop in its turn on the writer lock, and commits
    there (`_inline_in_turn`); on PostgreSQL in a worker thread, as every other write endpoint does."""
    endpoint.inline_write = True  # type: ignore[attr-defined]
    return endpoint


# Whether endpoints marked `fast_path` try it first (the tests compare the answers of both ways).
FAST_PATHS = True


def fast_path(
    fast: Callable[[Request], Awaitable[Response | None]],
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Mark an endpoint whose common case `fast` answers from the request itself, before FastAPI reads the body as
    declared, solves the endpoint's dependencies and validates its parameters: for a GET of a model, a quarter of
    its CPU (bench/RESULTS.md). `fast` takes what it needs with `path_params` and `json_body`, and calls the same
    services the endpoint does; it returns None, having changed nothing, for anything but the plain case, which the
    endpoint then answers as declared (FastAPI's validation and its 422s included). Its errors are the services'
    own, as the endpoint's would be."""

    def mark(endpoint: Callable[P, T]) -> Callable[P, T]:
        endpoint.fast_path = fast  # type: ignore[attr-defined]
        return endpoint

    return mark


def _fast_first(
    fast: Callable[[Request], Awaitable[Response | None]], full: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def fast_first(request: Request) -> Response:
        if FAST_PATHS:
            answer = await fast(request)
            if answer is not None:
                return answer
        return await full(request)

    return fast_first


# The longest path parameter a fast path takes as it is (what every name's `max_length` allows); longer ones get
# FastAPI's 422.
_PATH_PARAM_MAX = 255


def path_params(request: Request, *names: str) -> tuple[str, ...] | None:
    """The path parameters `names` of a fast path, or None if one is longer than a name may be."""
    given = request.path_params
    values = tuple(given[name] for name in names)
    return None if any(len(v) > _PATH_PARAM_MAX for v in values) else values


def json_body(request: Request, model: type[M]) -> M | None:
    """The body of a fast path, read by the boundary and validated into `model`; None for anything but a JSON
    object that validates (another content type, JSON that orjson refuses, such as NaN, or invalid fields), which
    the endpoint then refuses or accepts as FastAPI does. Nothing with an `Idempotency-Key`, whose replay and
    record the boundary keeps with the endpoint's session."""
    headers = request.headers
    if "idempotency-key" in headers:
        return None
    content_type = headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    body = getattr(request, "_body", None)  # read by the boundary (read_body_limited)
    if body is None or json_numbers.may_lose_precision(body):  # an integer orjson would read as a float
        return None
    try:
        return model.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _exact_numbers(full: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """FastAPI's handling of an endpoint with a JSON body, given the body parsed by `json_numbers.loads`: a number
    that would not come back as it was sent (NaN, Infinity, an integer beyond 64 bits) is FastAPI's 422
    `json_invalid`, at its position, as for JSON that does not parse."""

    async def exact(request: Request) -> Response:
        body = getattr(request, "_body", None)
        if body and _is_json(request.headers.get("content-type")):
            try:
                request._json = json_numbers.loads(body)
            except json.JSONDecodeError as exc:
                error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
                raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
        return await full(request)

    return exact


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (application/json or application/*+json; a body
    without one is not JSON to FastAPI's strict content type)."""
    if not content_type:
        return False
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _inline_in_turn(endpoint: Callable[..., Any], in_thread: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` run on the event loop once this request's turn on the writer lock has come (Database.write_turn),
    else `in_thread` in a worker thread: on PostgreSQL, when SQLite's lock is held by a writer that takes no turns
    (`WriteTurnBusy`), or when the request's transaction began already (it holds the lock itself).

    The thread hand-off cost more than the create itself: with 16 concurrent creates of a model on SQLite, one
    process spent 2.1 ms of CPU per create with it and 1.2 ms without, in the two threads' contention for the GIL
    and the wake-ups between them (bench/RESULTS.md). The loop never blocks: the turn is awaited (a holder in a
    thread may need the loop to finish), BEGIN IMMEDIATE on the turn does not wait for SQLite's lock, and the
    endpoint awaits nothing between its BEGIN and its COMMIT."""

    @functools.wraps(endpoint)
    async def inline_or_thread(*args: Any, **kwargs: Any) -> Any:
        request = _COMMIT_ON_RETURN.get()
        opened: Session | None = request.scope.get(_SESSION) if request is not None else None
        # A request whose session began its transaction already (a dependency's read, on a write session) holds the
        # lock itself: waiting for a turn would wait for itself.
        if request is not None and (opened is None or not opened.in_transaction()):
            async with request.app.state.ctx.db.write_turn() as turn:
                if turn:
                    ran, answer = _run_inline(request, endpoint, args, kwargs)
                    if ran:
                        return answer
        return await run_in_threadpool(in_thread, *args, **kwargs)

    return inline_or_thread


def _run_inline(
    request: Request, endpoint: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    """Begin the request's write transaction on the turn, run `endpoint`, and end the transaction before the
    answer goes back to the loop (the lock goes with the connection). (False, None) if SQLite's lock was held by a
    writer outside the turns: nothing ran."""
    session = request_session(request)
    try:
        session.connection()  # BEGIN IMMEDIATE now, on the turn: nothing of the endpoint's has run yet
    except WriteTurnBusy:
        session.rollback()
        return False, None
    try:
        answer = endpoint(*args, **kwargs)
        if isinstance(answer, Response) and answer.status_code >= 400:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return True, answer


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        call = self.dependant.call
        methods = self.methods or set()
        writes = bool(methods) and not methods & SAFE_METHODS
        plain = call is not None and not inspect.iscoroutinefunction(call) and not hasattr(call, "commits_on_return")
        if writes and plain:
            assert call is not None
            in_thread = _commit_on_return(call)
            self.dependant.call = _inline_in_turn(call, in_thread) if hasattr(call, "inline_write") else in_thread
        handler: Callable[[Request], Awaitable[Response]] = super().get_route_handler()
        if self.body_field is not None and not isinstance(self.body_field.field_info, params.Form):
            handler = _exact_numbers(handler)
        fast = getattr(call, "fast_path", None)
        if fast is not None:
            handler = _fast_first(fast, handler)

        streams_body = bool((self.openapi_extra or {}).get(STREAMED_BODY))

        async def boundary(request: Request) -> Response:
            ctx = request.app.state.ctx
            if not streams_body and (request.method not in SAFE_METHODS or _has_body(request)):
                await read_body_limited(request, ctx.settings.max_json_bytes)
            write = request.method not in SAFE_METHODS
            committed = False
            commit_here = None
            try:
                key = request.headers.get("idempotency-key") if request.method == "POST" else None
                principal = None
                if key is None and write:
                    commit_here = _COMMIT_ON_RETURN.set(request)
                if key is not None:
                    idempotency.validate_key(key)
                    session = request_session(request)
                    principal = await run_in_threadpool(ctx.authenticate, request)
                    fingerprint = idempotency.request_fingerprint(
                        request.method, request.url.path, request.url.query, await request.body()
                    )
                    replay = await run_in_threadpool(
                        idempotency.begin,
                        session,
                        principal.user_id,
                        key,
                        fingerprint,
                        ctx.settings.idempotency_ttl_seconds,
                    )
                    if replay is not None:
                        return replay
                response = await handler(request)
                if request.method == "GET" and response.status_code == 200:
                    response = not_modified(request, response)
                # A write that never opened a session (answered from prebuilt reads) has nothing to commit.
                opened = request.scope.get(_SESSION)
                if write and response.status_code < 400 and opened is not None:
                    if key is None and not opened.in_transaction():
                        # Committed by the endpoint (or never used), and nothing since: no database work is left.
                        opened.close()
                    else:
                        if key is not None and principal is not None:
                            idempotency.complete(opened, principal.user_id, key, response)
                        await run_in_threadpool(_finish, opened, True)
                    committed = True
                return response
            finally:
                if commit_here is not None:
                    _COMMIT_ON_RETURN.reset(commit_here)
                left: Session | None = request.scope.pop(_SESSION, None)
                if not committed and left is not None:
                    await run_db(request, _finish, left, False)

        return boundary


async def get_session(request: Request) -> Session:
    return request_session(request)


DbSession = Annotated[Session, Depends(get_session)]


def api_router(prefix: str, tags: list[str | Enum] | None = None) -> APIRouter:
    """A router of the API: transactional routes that document the error answers. Its routes are complete as
    declared, and `modelyard.api` adds them to the app as they are (see `include_routers`)."""
    return APIRouter(prefix=prefix, tags=tags, route_class=TransactionalRoute, responses=ERROR_RESPONSES)
