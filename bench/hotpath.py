"""CPU cost of one request on the hot paths, in-process: the ASGI app called directly, one request after another,
no network and no client, so the figure is the server's own work (framework, auth, queries, serialisation).

    .venv/bin/python bench/hotpath.py [--requests 3000] [--profile]

Builds a fresh SQLite home under bench/.work/hotpath with one workspace, 5 models and 20 adapters on the first one,
and prints microseconds per request (the best of five batches) for: a constant answer at the end of the route table
(the framework's floor), GET of a model, the first page of the model list, and the enabled adapters of a model.
`--profile` adds a cProfile of GET of a model, sorted by own time."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import pstats
import shutil
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.testclient import TestClient

from modelyard.app import create_app
from modelyard.bootstrap import ensure_admin
from modelyard.config import Settings
from modelyard.db import migrate
from modelyard.db.engine import Database

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "bench" / ".work" / "hotpath"
WS = "/v1/workspaces/default"


def build() -> tuple[Any, str]:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    settings = Settings(home=HOME, worker=False, log_level="WARNING")
    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    token = ensure_admin(db, settings)
    assert token is not None
    app = create_app(settings, db=db, start_worker=False)
    floor = APIRouter()

    @floor.get("/bench/constant")
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(floor)  # last: a request for it is matched against every route first
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        # The first admin's "default" workspace exists already.
        for i in range(5):
            client.post(f"{WS}/models", json={"name": f"m{i}"}).raise_for_status()
    with db.session(write=True) as session:
        import sqlalchemy as sa

        import modelyard.db.tables  # noqa: F401 (every table, so the foreign keys resolve)
        from modelyard.adapter.tables import Adapter
        from modelyard.model.tables import Model
        from modelyard.workspace.tables import Workspace

        ws_id = session.scalar(sa.select(Workspace.id).where(Workspace.name == "default"))
        model_id = session.scalar(sa.select(Model.id).where(Model.name == "m0"))
        for i in range(20):
            session.add(
                Adapter(
                    workspace_id=ws_id,
                    name=f"lora-{i:02d}",
                    model_id=model_id,
                    finetuning_type="lora",
                    enabled=i % 4 != 0,
                    source_type="location",
                    location=f"s3://bench/lora-{i:02d}",
                )
            )
        session.commit()
    return app, token


def scope(path: str, query: bytes, token: str, body: bytes | None = None) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET" if body is None else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


_NAMES = itertools.count()  # new models' names, unique across calls


async def per_request(app: Any, token: str, path: str, query: bytes, n: int, create: bool = False) -> float:
    """Microseconds per request; with `create`, each request is a POST of a new model named `c<n>`."""
    statuses: set[int] = set()

    async def call() -> None:
        body = json.dumps({"name": f"c{next(_NAMES)}"}).encode() if create else None

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body or b"", "more_body": False}

        await app(scope(path, query, token, body), receive, send)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    for _ in range(max(50, n // 20)):  # warm the caches (statements, token)
        await call()
    # The best of five batches: this machine's other load only ever adds time.
    batch = max(1, n // 5)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(batch):
            await call()
        best = min(best, (time.perf_counter() - started) / batch)
    assert statuses == ({201} if create else {200}), statuses
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    app, token = build()
    cases = [
        ("constant answer, last route (framework floor)", "/bench/constant", b""),
        ("GET a model (no adapters)", f"{WS}/models/m1", b""),
        ("GET a model with 20 adapters", f"{WS}/models/m0", b""),
        ("first page of the model list", f"{WS}/models", b"page_size=100"),
        ("enabled adapters of a model", f"{WS}/adapters", b"model=default/m0&enabled=true"),
    ]

    async def run() -> None:
        with TestClient(app):  # runs the app's lifespan
            pass
        print("| request | µs per request (in-process, sequential) |")
        print("|---|---|")
        for label, path, query in cases:
            micros = await per_request(app, token, path, query, args.requests)
            print(f"| {label} | {micros:.0f} |")
        micros = await per_request(app, token, f"{WS}/models", b"", args.requests, create=True)
        print(f"| create a model (POST, wall time: the commit runs in a worker thread) | {micros:.0f} |")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await per_request(app, token, f"{WS}/models/m0", b"", args.requests)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)

    asyncio.run(run())


if __name__ == "__main__":
    main()
