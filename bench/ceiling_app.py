"""The ceiling of bench/registry.py: a bare Starlette app answering a constant JSON, served by uvicorn with the
settings `modelyard serve` uses (uvicorn.run with log_level="warning", access_log=False, its default loop and HTTP
implementation, one process unless --workers says otherwise).

    .venv/bin/python bench/ceiling_app.py --port 8001 [--workers 2]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# About the size of a modelyard model answer without versions or adapters.
BODY = {
    "name": "constant",
    "workspace": "default",
    "display_name": "",
    "description": "a constant answer",
    "current_version": None,
    "spec": None,
    "adapters": [],
    "created_by": "admin",
    "created_at": "2026-11-22T00:00:00Z",
    "updated_at": "2026-11-22T00:00:00Z",
}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def get_model(request: Request) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/healthz", health), Route("/models/{name}", get_model)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers > 1:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        uvicorn.run(
            "ceiling_app:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
        )
    else:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
