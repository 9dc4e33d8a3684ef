"""The FastAPI application: routers, the request middleware, and the handlers that turn every error into the
one error body of DESIGN.md section 4."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard import __version__, auth
from modelyard.api import include_routers
from modelyard.config import Settings, get_settings
from modelyard.context import AppContext
from modelyard.db.checkpoints import WalCheckpointer
from modelyard.db.engine import Database
from modelyard.db.urls import sqlite_file
from modelyard.errors import ERROR_RESPONSES, ErrorBody, ModelyardError
from modelyard.identity.principals import PrincipalCache, PrincipalListener, shared_revision
from modelyard.job import repository as jobs
from modelyard.kit.answer_cache import AnswerCache
from modelyard.observability import Metrics, RequestMiddleware
from modelyard.storage import create_store
from modelyard.web import install_html_errors

log = logging.getLogger("modelyard.app")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "RANGE_NOT_SATISFIABLE",
    422: "VALIDATION_ERROR",
}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    # Pydantic's `input` and `ctx` may echo secrets or huge bodies back; keep loc/msg/type only. A body that is not
    # JSON says why: the JSON parser's reason names what it expected, never the body's content.
    cleaned = []
    for error in errors:
        message = str(error.get("msg", ""))
        reason = (error.get("ctx") or {}).get("error")
        if error.get("type") == "json_invalid" and isinstance(reason, str):
            message = f"{message}: {reason}"
        cleaned.append({"loc": list(error.get("loc", ())), "msg": message, "type": error.get("type", "")})
    return cleaned


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def domain_error(_request: Request, exc: ModelyardError) -> JSONResponse:
        return _json(exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _clean_validation_errors(exc.errors())
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
        return _json(
            422,
            {
                "error_code": "VALIDATION_ERROR",
                "error_msg": f"Invalid request: {where}: {first['msg']}{more}",
                "solution_msg": "Fix the fields listed in 'detail' and retry",
                "detail": detail,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
            solution = "See /docs for the API's routes"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
            solution = "See the Allow header or /docs for the methods this route accepts"
        else:
            message, solution = str(exc.detail), ""
        return _json(
            exc.status_code,
            {"error_code": code, "error_msg": message, "solution_msg": solution, "detail": None},
            dict(exc.headers or {}),
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if not exc.connection_invalidated:
            raise exc  # a bug or a database fault: the 500 of every unexpected error, logged with its request id
        log.warning("the connection to the database was lost: %s", exc.orig)
        return _json(
            503,
            {
                "error_code": "DATABASE_UNAVAILABLE",
                "error_msg": "The connection to the database was lost while this request was being answered",
                "solution_msg": "Retry in a moment (the server reconnects by itself); check that a write you retry "
                "did not land, or send it with an Idempotency-Key",
                "detail": None,
            },
            {"Retry-After": "1"},
        )

    @app.exception_handler(StaleDataError)
    async def stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        return _json(
            409,
            {
                "error_code": "CONCURRENT_MODIFICATION",
                "error_msg": "The resource was changed by another request while this one was being applied",
                "solution_msg": "GET the resource again and retry",
                "detail": None,
            },
        )


def _document_error_body(app: FastAPI) -> None:
    """Put ErrorBody's schema in the OpenAPI components, where every error answer refers to it (ERROR_RESPONSES
    names the schema, not the model, so FastAPI does not put it there)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    start_worker: bool | None = None,
    freeze_gc: bool | None = None,
) -> FastAPI:
    """The app. Without settings (uvicorn's factory in each `serve --workers N` process) it reads them from the
    environment and, unless told otherwise, freezes the garbage collector's view of its start-up objects."""
    freeze_gc = settings is None if freeze_gc is None else freeze_gc
    settings = settings or get_settings()
    db = db or Database(settings.database_url)
    metrics = Metrics()
    principals = PrincipalCache(settings.token_cache_seconds, shared=shared_revision(db.url))
    ctx = AppContext(
        settings=settings,
        db=db,
        store=create_store(settings),
        principals=principals,
        answers=AnswerCache(settings.list_cache_mb * 1024 * 1024),
        authenticate=auth.authenticate,
    )
    run_worker = settings.worker if start_worker is None else start_worker

    def job_counts() -> dict[str, int]:
        with db.session(write=False) as session:
            return jobs.counts_by_status(session)

    metrics.add_job_counts(job_counts)
    metrics.add_answer_cache(ctx.answers)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = None
        listener = None
        checkpointer = None
        database_file = sqlite_file(db.url) if db.is_sqlite else None
        if database_file is not None:
            # SQLite's WAL checkpoints in a thread of their own, not in a commit on the event loop (db.checkpoints).
            checkpointer = WalCheckpointer(database_file)
            checkpointer.start()
        if not db.is_sqlite and principals.enabled:
            # Other processes may revoke tokens this one has cached: hear about it (see identity.principals).
            listener = PrincipalListener(db.url, principals)
            listener.start()
        if run_worker:
            from modelyard.job.worker import Worker

            worker = Worker(db, settings)
            worker.start()
        if freeze_gc:
            # Everything built so far (modules, routes, schemas, mappers: about 150,000 objects) lives as long as
            # the process. Left to the collector, each full collection walks all of it, an 80-90 ms pause of every
            # request in flight on a 2-core machine (the p99 of GET by name); frozen, a full collection costs
            # microseconds. Only for a serving process: tests build many apps in one process.
            gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)
            if listener is not None:
                await run_in_threadpool(listener.stop)
            if db.async_reads is not None:
                await db.async_reads.close()
            if checkpointer is not None:
                await run_in_threadpool(checkpointer.stop)

    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="A registry for large language models, their versions, adapters, files and lineage.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.ctx = ctx
    app.state.metrics = metrics
    install_error_handlers(app)
    install_html_errors(app)  # the web UI's error pages, under /ui only
    include_routers(app)
    _document_error_body(app)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    return app
