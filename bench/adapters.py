"""Adapter registration and listing at 1,000 adapters, on PostgreSQL (or SQLite with --sqlite).

    .venv/bin/python bench/adapters.py --count 1000 --concurrency 8

Starts `modelyard serve` (with its worker) on a free loopback port against a database created for the run (and
dropped after it), registers a tiny Llama base model and a real PEFT LoRA adapter fileset (tests/fixtures/adapters),
then registers COUNT adapters through the API — each one read and checked against the base — and times lists with
filters, first pages and page_token walks. Prints a Markdown table for bench/RESULTS.md."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "adapters"
WORK = ROOT / "bench" / ".work"
PG_ADMIN = os.environ.get("MODELYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"{statistics.median(values) * 1000:.1f} / {p95 * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    dbname = f"modelyard_bench_{secrets.token_hex(4)}"
    if not args.sqlite:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        env["MODELYARD_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    port = free_port()
    env.update(
        {
            "MODELYARD_HOME": str(WORK / "home"),
            "MODELYARD_PORT": str(port),
            "MODELYARD_LOG_LEVEL": "WARNING",
            "MODELYARD_JOB_POLL_SECONDS": "0.1",
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        token = (WORK / "home" / "admin-token").read_text().strip()
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        ws = "/v1/workspaces/default"
        for fileset, directory in [
            ("tiny-llama-files", FIXTURES / "bases" / "tiny-llama"),
            ("lora-llama", FIXTURES / "lora-llama"),
        ]:
            http.post(f"{ws}/filesets", json={"name": fileset}).raise_for_status()
            for path in directory.iterdir():
                http.put(f"{ws}/filesets/{fileset}/-/{path.name}", content=path.read_bytes()).raise_for_status()
        for model in ("tiny-llama", "tiny-llama-b"):
            http.post(
                f"{ws}/models",
                json={
                    "name": model,
                    "version": {
                        "name": "v1",
                        "config": {
                            "llm_model_config": {
                                "base_model_type": "TINY_LLAMA",
                                "model_path": "default/tiny-llama-files",
                            }
                        },
                    },
                },
            ).raise_for_status()
        while any(
            http.get(f"{ws}/models/{m}").json()["current_version"] is None for m in ("tiny-llama", "tiny-llama-b")
        ):
            time.sleep(0.1)

        def register(i: int) -> float:
            model = "tiny-llama" if i % 2 else "tiny-llama-b"
            body = {"name": f"lora-{i:05d}", "fileset": "lora-llama", "finetuning_type": "lora", "enabled": i % 3 != 0}
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                started = time.perf_counter()
                r = c.post(f"{ws}/models/{model}/adapters", json=body)
                elapsed = time.perf_counter() - started
            if r.status_code != 201 or r.json()["compatibility"]["status"] != "compatible":
                raise SystemExit(f"registration failed: {r.status_code} {r.text[:300]}")
            return elapsed

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            latencies = list(pool.map(register, range(args.count)))
        total = time.perf_counter() - started

        lists = {
            "first page of 100, no filter": {"page_size": 100},
            "model=tiny-llama, enabled=true": {"model": "tiny-llama", "enabled": "true", "page_size": 100},
            "finetuning_type=lora, sort=name": {"finetuning_type": "lora", "sort": "name", "page_size": 100},
            "name_prefix=lora-009": {"name_prefix": "lora-009", "page_size": 100},
            "fileset=lora-llama": {"fileset": "default/lora-llama", "page_size": 100},
        }
        list_rows = []
        for label, params in lists.items():
            http.get(f"{ws}/adapters", params=params).raise_for_status()
            list_rows.append(
                (label, timed(lambda p=params: http.get(f"{ws}/adapters", params=p).raise_for_status(), 30))
            )

        def walk() -> None:
            params: dict[str, object] = {"page_size": 100}
            seen = 0
            while True:
                page = http.get(f"{ws}/adapters", params=params).json()
                seen += len(page["data"])
                if not page["next_page_token"]:
                    break
                params = {"page_size": 100, "page_token": page["next_page_token"]}
            assert seen == args.count, seen

        walks = timed(walk, 5)
        model_get = timed(lambda: http.get(f"{ws}/models/tiny-llama").raise_for_status(), 30)
    finally:
        server.terminate()
        server.wait(15)
        if not args.sqlite:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        shutil.rmtree(WORK, ignore_errors=True)

    kind = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"\n{args.count} adapters on {kind}, concurrency {args.concurrency}, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print("| operation | result |")
    print("|---|---|")
    print(
        f"| register {args.count} adapters (each read and checked against its base) | {total:.1f} s, "
        f"{args.count / total:.0f}/s, latency median/p95 {ms(latencies)} ms |"
    )
    for label, values in list_rows:
        print(f"| list: {label} | median/p95 {ms(values)} ms |")
    print(
        f"| walk all {args.count} with page_token, 100 per page | median {statistics.median(walks) * 1000:.0f} ms "
        f"for {args.count // 100} pages |"
    )
    print(f"| GET the base model (lists its {args.count // 2} adapters) | median/p95 {ms(model_get)} ms |")


if __name__ == "__main__":
    main()
