"""Request ids, the access log, Prometheus metrics and the last-resort 500 answer, as one ASGI middleware that
wraps the whole app (so even an unhandled exception gets the error shape and the `X-Request-ID` header)."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from modelyard.kit.answer_cache import AnswerCache

log = logging.getLogger("modelyard.access")
errlog = logging.getLogger("modelyard.error")

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelyard_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "modelyard_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def add_job_counts(self, source: Callable[[], dict[str, int]]) -> None:
        class _JobCollector:
            def describe(self) -> Any:
                # Without this the registry would call collect() (a query) when registering.
                return [GaugeMetricFamily("modelyard_jobs", "Jobs by state", labels=["state"])]

            def collect(self) -> Any:
                family = GaugeMetricFamily("modelyard_jobs", "Jobs by state", labels=["state"])
                for state, count in source().items():
                    family.add_metric([state], count)
                yield family

        self.registry.register(_JobCollector())

    def add_answer_cache(self, cache: AnswerCache) -> None:
        class _AnswerCacheCollector:
            def collect(self) -> Any:
                hits, misses, size = cache.stats()
                yield CounterMetricFamily(
                    "modelyard_list_cache_hits", "Polled lists answered from memory (database unchanged)", value=hits
                )
                yield CounterMetricFamily(
                    "modelyard_list_cache_misses", "Polled lists built from the database and kept", value=misses
                )
                yield GaugeMetricFamily("modelyard_list_cache_bytes", "Bytes of kept answers", value=size)

        self.registry.register(_AnswerCacheCollector())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("modelyard")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def error_body(request_id: str) -> bytes:
    return json.dumps(
        {
            "error_code": "INTERNAL_ERROR",
            "error_msg": f"Internal server error (request id {request_id})",
            "solution_msg": "Retry later; if it persists, report the request id to the operator",
            "detail": None,
        }
    ).encode()


# Request ids need to be unique, not secret: a generator seeded once per process from the OS. secrets.token_hex
# read the OS's random source on every request, and the read gave up the GIL: with database reads in threads (on
# PostgreSQL), the event loop then waited for a thread's turn to end, on every request (bench/RESULTS.md).
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            errlog.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if response_started:
                raise
            status = 500
            body = error_body(request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            # FastAPI's own routes (/openapi.json, /docs) are plain Starlette routes with no "route" in the scope;
            # they matched an endpoint, and have no path parameters, so their path is a bounded label too.
            route_path = getattr(route, "path", None) or (scope.get("path") if "endpoint" in scope else "<unmatched>")
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route_path, str(status)).inc()
            self.metrics.latency.labels(method, route_path).observe(duration)
            log.info(
                "%s %s %s",
                method,
                scope.get("path", ""),
                status,
                extra={
                    "fields": {
                        "request_id": request_id,
                        "user": state.get("user", "-"),
                        "route": route_path,
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    }
                },
            )
