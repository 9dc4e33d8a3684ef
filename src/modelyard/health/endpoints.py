"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from modelyard.context import AppContext
from modelyard.db import migrate
from modelyard.errors import ERROR_RESPONSES

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _readiness(ctx: AppContext) -> tuple[int, dict[str, str]]:
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        at_head = migrate.is_at_head(ctx.db.engine)
    except Exception as exc:
        return 503, {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}
    if not at_head:
        return 503, {"status": "unavailable", "database": "ok", "migrations": "not at head: run `modelyard db upgrade`"}
    return 200, {"status": "ok", "database": "ok", "migrations": "at head"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or migrations behind"}})
async def readyz(request: Request) -> JSONResponse:
    """The database is reachable and its schema is at the newest migration."""
    code, body = await run_in_threadpool(_readiness, request.app.state.ctx)
    if code != 200:
        return JSONResponse(
            {
                "error_code": "NOT_READY",
                "error_msg": "; ".join(f"{k}: {v}" for k, v in body.items() if k != "status"),
                "solution_msg": "Check the database and run `modelyard db upgrade`",
                "detail": body,
            },
            status_code=code,
        )
    return JSONResponse(body)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text exposition: request counts and latencies by route, jobs by state."""
    registry = request.app.state.metrics.registry
    payload = await run_in_threadpool(generate_latest, registry)
    return PlainTextResponse(payload, media_type=CONTENT_TYPE_LATEST)
