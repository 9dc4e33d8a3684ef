"""Registry workloads against MLflow's model registry and a bare Starlette ceiling (issue 7).

    .venv/bin/python bench/registry.py            # the issue's sizes (make bench)
    .venv/bin/python bench/registry.py --quick    # reduced, under 3 minutes once the MLflow venv exists
    .venv/bin/python bench/registry.py --postgres # also modelyard and MLflow on PostgreSQL
    .venv/bin/python bench/registry.py --scale    # also grow to 100,000 models through each API and read again

Creates (or reuses) a virtual environment with MLflow under bench/.work/mlflow-venv, then starts one server at a
time on a free loopback port, each with fresh state under bench/.work/registry-run: `mlflow server` (SQLite, its
defaults: 4 uvicorn workers and a job runner), `modelyard serve` (SQLite; with --postgres both also on PostgreSQL,
each on a database created for the run and dropped after), and bench/ceiling_app.py. One asyncio load generator
(httpx.AsyncClient) drives the same workloads against each; when `wrk` is on PATH it also drives the GET rows of
every server (GET by name, the first page, the name-prefix search) and timed creates; install it from Debian's
packages (`apt-get install wrk`) for the figures in bench/RESULTS.md. Prints Markdown tables, with the ratios
modelyard / MLflow on the same kind of database, for bench/RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import dataclasses
import functools
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

import modelyard

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RUN = WORK / "registry-run"
MLFLOW_VENV = WORK / "mlflow-venv"
FIXTURE = ROOT / "tests" / "fixtures" / "adapters" / "bases" / "tiny-llama"
PG_ADMIN = os.environ.get("MODELYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WRK = shutil.which("wrk")
WS = "/v1/workspaces/default"

Request = tuple[str, str, dict[str, Any]]  # method, path, keyword arguments of httpx.AsyncClient.request


@dataclass
class Sizes:
    create: int  # models created at each concurrency
    version_models: int  # models that get 5 versions each
    read_seconds: float
    list_seconds: float
    walks: int
    scale: int = 100_000


FULL = Sizes(create=2000, version_models=200, read_seconds=15, list_seconds=10, walks=3)
QUICK = Sizes(create=200, version_models=40, read_seconds=5, list_seconds=3, walks=2)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- memory of a process tree, from /proc ------------------------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def status_kib(pid: int, fieldname: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(fieldname + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree twice a second; keeps the peaks."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop_event = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.hwm_sum = 0

    def sample(self) -> None:
        pids = tree_pids(self.root)
        self.peak_procs = max(self.peak_procs, len(pids))
        self.peak_rss = max(self.peak_rss, sum(status_kib(p, "VmRSS") for p in pids))
        self.peak_pss = max(self.peak_pss, sum(pss_kib(p) for p in pids))
        self.hwm_sum = max(self.hwm_sum, sum(status_kib(p, "VmHWM") for p in pids))

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.sample()


# -- servers -----------------------------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    kind: str  # "mlflow", "modelyard" or "ceiling"
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    health: str
    home: Path | None = None
    database_url: str | None = None  # modelyard: where the bench seeds adapters; MLflow: None on SQLite
    headers: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    sampler: TreeSampler | None = None
    cold_start: float = 0.0

    @property
    def on_postgres(self) -> bool:
        return (self.database_url or "").startswith("postgresql")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        logfile = (self.cwd / "server.log").open("wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.sampler = TreeSampler(self.process.pid)
        self.sampler.start()
        with httpx.Client(timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(self.base + self.health).status_code == 200:
                        break
                if self.process.poll() is not None or time.perf_counter() - started > timeout:
                    tail = (self.cwd / "server.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"{self.label} did not start:\n{tail}")
                time.sleep(0.02)
        self.cold_start = time.perf_counter() - started
        if self.home is not None:
            token = (self.home / "admin-token").read_text().strip()
            self.headers = {"Authorization": f"Bearer {token}"}

    def settle(self, quiet: float = 0.05, window: float = 0.5, calm_windows: int = 4, timeout: float = 30) -> float:
        """Wait until the server's processes are done starting (`calm_windows` windows of `window` seconds in a row
        using under `quiet` of a core), so the first workload measures the server, not its start-up: a server's
        first answer comes before all of it is up (MLflow's workers and job runner; modelyard's job worker, which
        starts a second after the server and imports for a second or more). The seconds waited; cold start is
        measured apart."""
        assert self.process is not None
        hz = os.sysconf("SC_CLK_TCK")

        def cpu_seconds() -> float:
            total = 0
            for pid in tree_pids(self.process.pid):  # type: ignore[union-attr]
                with contextlib.suppress(OSError):
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
            return total / hz

        started = time.perf_counter()
        calm = 0
        last = cpu_seconds()
        while calm < calm_windows and time.perf_counter() - started < timeout:
            time.sleep(window)
            now = cpu_seconds()
            calm = calm + 1 if now - last < quiet * window else 0
            last = now
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.sample()
            self.sampler.stop_event.set()
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        # Children that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def ensure_mlflow_venv(spec: str, postgres: bool) -> dict[str, str]:
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        log(f"creating {MLFLOW_VENV} and installing {spec} (a few minutes) ...")
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", spec], check=True)
    # MLflow's SQLAlchemy store reaches PostgreSQL through psycopg 3, as modelyard does (`postgresql+psycopg://`).
    if postgres and subprocess.run([str(python), "-c", "import psycopg"], capture_output=True).returncode != 0:
        log("installing psycopg into MLflow's venv ...")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "psycopg[binary]"], check=True)
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m\n"
            "for p in ('mlflow','SQLAlchemy','uvicorn','fastapi','Flask','huey','psycopg'):\n"
            "    try: print(p, m.version(p))\n"
            "    except m.PackageNotFoundError: pass",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout
    (WORK / "mlflow-freeze.txt").write_text(freeze)
    return dict(line.split(" ", 1) for line in versions.splitlines())


def mlflow_server(root: Path, database_url: str | None = None) -> Server:
    """`mlflow server` with its defaults, on SQLite, or on the PostgreSQL database `database_url`."""
    port = free_port()
    cwd = root / "mlflow" / ("pg" if database_url else "sqlite")
    cwd.mkdir(parents=True)
    argv = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        if database_url
        else f"sqlite:///{cwd / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELYARD_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{MLFLOW_VENV / 'bin'}:{env.get('PATH', '')}"
    label = "MLflow (PostgreSQL)" if database_url else "MLflow (SQLite)"
    return Server(label, "mlflow", argv, env, cwd, port, "/health", database_url=database_url)


def modelyard_server(
    root: Path, database_url: str | None, label: str, workers: int = 1, *, list_cache: bool = True
) -> Server:
    """`modelyard serve`; `list_cache=False` turns its answer cache of polled lists off, so that a list's latency is
    the database's (the growth step compares sizes: with the cache, a few pages polled over and over at the base size
    were kept answers, and thousands of distinct pages at 100,000 rows mostly misses)."""
    port = free_port()
    cwd = root / label.split()[0].lower() / ("pg" if database_url else "sqlite")
    home = cwd / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_HOME": str(home), "MODELYARD_PORT": str(port), "MODELYARD_LOG_LEVEL": "WARNING"})
    if not list_cache:
        env["MODELYARD_LIST_CACHE_MB"] = "0"
        label += ", list cache off"
    if database_url:
        env["MODELYARD_DATABASE_URL"] = database_url
    argv = [sys.executable, "-m", "modelyard", "serve", "--workers", str(workers)]
    url = database_url or f"sqlite:///{home / 'modelyard.db'}"
    return Server(label, "modelyard", argv, env, cwd, port, "/healthz", home=home, database_url=url)


def ceiling_server(root: Path, workers: int) -> Server:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "ceiling_app.py"), "--port", str(port), "--workers", str(workers)]
    env = dict(os.environ)
    label = f"ceiling: bare Starlette, uvicorn {workers} process{'es' if workers > 1 else ''}"
    return Server(label, "ceiling", argv, env, root / f"ceiling-{workers}", port, "/healthz")


# -- the two APIs ------------------------------------------------------------------------------------------------

MLFLOW = "/api/2.0/mlflow"


def create_model(kind: str, name: str) -> Request:
    if kind == "mlflow":
        return ("POST", f"{MLFLOW}/registered-models/create", {"json": {"name": name}})
    return ("POST", f"{WS}/models", {"json": {"name": name}})


def create_version(kind: str, model: str, i: int) -> Request:
    if kind == "mlflow":
        body = {"name": model, "source": f"s3://bench-bucket/{model}/{i}"}
        return ("POST", f"{MLFLOW}/model-versions/create", {"json": body})
    config = {"llm_model_config": {"base_model_type": "TINY_LLAMA", "model_path": "default/tiny-llama-files"}}
    return ("POST", f"{WS}/models/{model}/versions", {"json": {"config": config}})


def get_path(kind: str, name: str) -> str:
    if kind == "mlflow":
        return f"{MLFLOW}/registered-models/get?name={name}"
    if kind == "ceiling":
        return f"/models/{name}"
    return f"{WS}/models/{name}"


def list_request(kind: str, token: str | None = None, prefix: str | None = None) -> Request:
    if kind == "mlflow":
        params: dict[str, Any] = {"max_results": 100}
        if prefix is not None:
            params["filter"] = f"name LIKE '{prefix}%'"
        if token:
            params["page_token"] = token
        return ("GET", f"{MLFLOW}/registered-models/search", {"params": params})
    params = {"page_size": 100}
    if prefix is not None:
        params["name_prefix"] = prefix
    if token:
        params["page_token"] = token
    return ("GET", f"{WS}/models", {"params": params})


def page_items(kind: str, body: dict[str, Any]) -> tuple[list[str], str | None]:
    """The names of a page's models, and the token of the next page."""
    if kind == "mlflow":
        return [m["name"] for m in body.get("registered_models", [])], body.get("next_page_token") or None
    return [m["name"] for m in body["data"]], body.get("next_page_token") or None


# -- the load generator ------------------------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    server: str
    client: str
    requests: int
    errors: int
    seconds: float
    p50: float  # milliseconds
    p95: float
    p99: float
    first_error: str = ""
    note: str = ""

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def drive(
    server: Server,
    workload: str,
    make: Callable[[int], Request],
    concurrency: int,
    total: int | None = None,
    seconds: float | None = None,
) -> Result:
    """Run `make(i)` requests with `concurrency` workers (a client each): `total` of them, or for `seconds`."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    counter = 0
    deadline = time.perf_counter() + (seconds or 0)

    async def worker() -> None:
        # One client (so one keep-alive connection) per worker: a shared AsyncClient's pool costs the client about
        # two thirds of its throughput at c=32 on this machine (330 against 1,050 GET/s on the ceiling app).
        nonlocal counter, errors, first_error
        async with httpx.AsyncClient(base_url=server.base, headers=server.headers, timeout=120) as client:
            while True:
                if total is not None and counter >= total:
                    return
                if seconds is not None and time.perf_counter() >= deadline:
                    return
                i = counter
                counter += 1
                method, path, kwargs = make(i)
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, **kwargs)
                    ok = response.status_code < 300
                    problem = "" if ok else f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{type(exc).__name__}: {exc}"
                latencies.append(time.perf_counter() - started)
                if not ok:
                    errors += 1
                    first_error = first_error or problem

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        workload,
        server.label,
        "httpx",
        len(latencies),
        errors,
        elapsed,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.95) * 1000,
        percentile(latencies, 0.99) * 1000,
        first_error,
    )


async def walk(server: Server, workload: str, expected: int, repeat: int) -> Result:
    """Every page of 100 through page_token / next_page_token, one request at a time, `repeat` times."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    pages = 0
    async with httpx.AsyncClient(base_url=server.base, headers=server.headers, timeout=120) as client:
        started = time.perf_counter()
        for _ in range(repeat):
            token: str | None = None
            seen: list[str] = []
            while True:
                method, path, kwargs = list_request(server.kind, token)
                t = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                latencies.append(time.perf_counter() - t)
                pages += 1
                if response.status_code != 200:
                    errors += 1
                    first_error = first_error or f"{response.status_code} {response.text[:200]}"
                    break
                names, token = page_items(server.kind, response.json())
                seen += names
                if not token:
                    break
            # At least the models the bench created (wrk's creates add some it does not count), each once.
            if len(seen) < expected or len(set(seen)) != len(seen):
                errors += 1
                found = f"{len(seen)} models ({len(seen) - len(set(seen))} seen twice)"
                first_error = first_error or f"walk saw {found}, expected at least {expected}"
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        workload,
        server.label,
        "httpx",
        pages,
        errors,
        elapsed,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.95) * 1000,
        percentile(latencies, 0.99) * 1000,
        first_error,
        note=f"{elapsed / repeat * 1000:.0f} ms per walk of {pages // repeat} pages",
    )


WRK_SCRIPT = """
local paths = {%(paths)s}
%(headers)s
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


# Appended to every wrk script: one line of results for `_wrk` to read.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d p50=%d p95=%d p99=%d\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""

WRK_CREATE_SCRIPT = """
local headers = {%(headers)s}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local counter = 0
request = function()
  counter = counter + 1
  local name = string.format("%(prefix)s-t%%d-%%07d", id, counter)
  return wrk.format("POST", "%(path)s", headers, '{"name": "' .. name .. '"}')
end
"""

WRK_POST_SCRIPT = """
local headers = {%(headers)s}
local posts = {%(posts)s}
math.randomseed(%(seed)d)
request = function()
  local post = posts[math.random(#posts)]
  return wrk.format("POST", post[1], headers, post[2])
end
"""


def wrk_path(request: Request) -> str:
    """The path and query string of a GET, for wrk (which sends exactly what it is given)."""
    method, path, options = request
    assert method == "GET"
    params = options.get("params")
    return f"{path}?{urlencode(params)}" if params else path


def run_wrk(server: Server, workload: str, paths: list[str], seconds: float, concurrency: int) -> Result:
    """GETs of paths picked at random, by wrk (a compiled client, so that the client does not hide the server)."""
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in server.headers.items())
    script = WRK_SCRIPT % {
        "paths": ",".join(json.dumps(p) for p in paths),
        "headers": headers,
        "seed": random.randrange(1 << 30),
    }
    return _wrk(server, workload, script, seconds, concurrency)


def run_wrk_creates(server: Server, workload: str, prefix: str, seconds: float, concurrency: int) -> Result:
    """Creates of new models (names `prefix-t<thread>-<n>`) for `seconds`, by wrk: with httpx at 16 connections the
    client, not modelyard, was the limit (105 creates/s against 250-290/s with wrk)."""
    method, path, _options = create_model(server.kind, "")
    assert method == "POST"
    headers = {**server.headers, "Content-Type": "application/json"}
    script = WRK_CREATE_SCRIPT % {
        "headers": ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
        "prefix": prefix,
        "path": path,
    }
    return _wrk(server, workload, script, seconds, concurrency)


def run_wrk_versions(server: Server, workload: str, models: list[str], seconds: float, concurrency: int) -> Result:
    """New versions of models picked at random for `seconds`, by wrk (modelyard numbers them v1, v2, ...; MLflow
    1, 2, ...): with httpx the client, not modelyard, was the limit, as for creates."""
    posts = []
    for model in models:
        method, path, options = create_version(server.kind, model, 0)
        assert method == "POST"
        body = json.dumps(options["json"])
        posts.append(f"{{{json.dumps(path)}, {json.dumps(body)}}}")  # a Lua table {path, body}; ASCII only
    headers = {**server.headers, "Content-Type": "application/json"}
    script = WRK_POST_SCRIPT % {
        "headers": ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
        "posts": ", ".join(posts),
        "seed": random.randrange(1 << 30),
    }
    return _wrk(server, workload, script, seconds, concurrency)


def _wrk(server: Server, workload: str, script_text: str, seconds: float, concurrency: int) -> Result:
    assert WRK is not None
    script = RUN / f"wrk-{server.port}.lua"
    script.write_text(script_text + WRK_DONE)
    threads = min(2, concurrency)
    argv = [WRK, f"-t{threads}", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "30s", "-s", str(script)]
    out = subprocess.run([*argv, server.base], capture_output=True, text=True, check=True).stdout
    match = re.search(r"BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) p50=(\d+) p95=(\d+) p99=(\d+)", out)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    requests, duration, errors, p50, p95, p99 = (int(g) for g in match.groups())
    return Result(workload, server.label, "wrk", requests, errors, duration / 1e6, p50 / 1000, p95 / 1000, p99 / 1000)


# -- one server through every workload ---------------------------------------------------------------------------


@dataclass
class Report:
    server: Server
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def setup_modelyard(server: Server) -> None:
    """A fileset for the versions to point at (not timed)."""
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as http:
        http.post(f"{WS}/filesets", json={"name": "tiny-llama-files"}).raise_for_status()
        for path in FIXTURE.iterdir():
            url = f"{WS}/filesets/tiny-llama-files/-/{path.name}"
            http.put(url, content=path.read_bytes()).raise_for_status()


def wait_versions_ready(server: Server, models: list[str], timeout: float) -> tuple[float, int]:
    """modelyard validates versions in its worker: wait until none is CREATING, so reads do not run beside it."""
    started = time.perf_counter()
    pending = list(models)
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as http:
        while pending and time.perf_counter() - started < timeout:
            still = []
            for model in pending:
                page = http.get(f"{WS}/models/{model}/versions", params={"status": "CREATING"}).json()
                if page["data"]:
                    still.append(model)
            pending = still
            if pending:
                time.sleep(0.5)
    return time.perf_counter() - started, len(pending)


def read_and_list(report: Report, sizes: Sizes, names: list[str], total: int, suffix: str, use_wrk: bool) -> None:
    server, kind = report.server, report.server.kind
    pick = random.Random(7)

    def get(_i: int) -> Request:
        return ("GET", get_path(kind, pick.choice(names)), {})

    label = f"read: GET one model by name, c=32{suffix}"
    report.results.append(asyncio.run(drive(server, label, get, 32, seconds=sizes.read_seconds)))
    if use_wrk:
        paths = [get_path(kind, n) for n in names]
        report.results.append(run_wrk(server, label, paths, sizes.read_seconds, 32))
    first = list_request(kind)
    label = f"list: first page of 100, c=16{suffix}"
    report.results.append(asyncio.run(drive(server, label, lambda _i: first, 16, seconds=sizes.list_seconds)))
    if use_wrk:
        report.results.append(run_wrk(server, label, [wrk_path(first)], sizes.list_seconds, 16))
    report.results.append(asyncio.run(walk(server, f"list: walk every page of 100{suffix}", total, sizes.walks)))
    # Prefixes that match 10 models each (the name less its last digit).
    prefixes = sorted({n[:-1] for n in names})

    def prefix(_i: int) -> Request:
        return list_request(kind, prefix=pick.choice(prefixes))

    label = f"list: name-prefix search, c=16{suffix}"
    report.results.append(asyncio.run(drive(server, label, prefix, 16, seconds=sizes.list_seconds)))
    if use_wrk:
        paths = [wrk_path(list_request(kind, prefix=p)) for p in prefixes]
        report.results.append(run_wrk(server, label, paths, sizes.list_seconds, 16))


ADAPTERS_PER_MODEL = 100


def seed_adapters(server: Server, models: list[str], total: int) -> float:
    """Grow the adapters table to `total` rows, ADAPTERS_PER_MODEL on each of the first models, written straight
    into modelyard's database through its own tables (registering through the API reads and checks each adapter's
    files, about 35/s: hours for 100,000). The reads that follow go through the API. Returns the seconds taken."""
    import sqlalchemy as sa

    import modelyard.db.tables  # noqa: F401 (every table, so the foreign keys resolve)
    from modelyard.adapter.tables import Adapter
    from modelyard.db.base import new_id, utcnow
    from modelyard.db.engine import Database
    from modelyard.model.tables import Model
    from modelyard.workspace.tables import Workspace

    assert server.database_url is not None
    db = Database(server.database_url)
    started = time.perf_counter()
    try:
        with db.session(write=True) as session:
            have = session.scalar(sa.select(sa.func.count()).select_from(Adapter)) or 0
            ws_id = session.scalar(sa.select(Workspace.id).where(Workspace.name == "default"))
            need = max(0, total - have)
            owners = models[have // ADAPTERS_PER_MODEL : (total + ADAPTERS_PER_MODEL - 1) // ADAPTERS_PER_MODEL]
            found = session.execute(sa.select(Model.name, Model.id).where(Model.name.in_(owners)))
            ids = {name: model_id for name, model_id in found}
            rows: list[dict[str, Any]] = []
            for i in range(have, have + need):
                now = utcnow()
                rows.append(
                    {
                        "id": new_id("adapter"),
                        "workspace_id": ws_id,
                        "name": f"lora-{i:07d}",
                        "description": "",
                        "model_id": ids[models[i // ADAPTERS_PER_MODEL]],
                        "finetuning_type": "lora",
                        "enabled": i % 4 != 0,
                        "source_type": "location",
                        "location": f"s3://bench/lora-{i:07d}",
                        "source_pinned": {},
                        "compatibility": {},
                        "created_by": "admin",
                        "updated_by": "admin",
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
            for start in range(0, len(rows), 5000):
                session.execute(sa.insert(Adapter), rows[start : start + 5000])
            session.commit()
    finally:
        db.dispose()
    return time.perf_counter() - started


def analyze_postgres(server: Server) -> bool:
    """Do after a bulk growth what autovacuum would (it is off on this machine's PostgreSQL: `SHOW autovacuum`):
    refresh the planner's statistics and the visibility map, so the plans are those of a maintained database (the
    capped count of a first page is an index-only scan only once the table has been vacuumed)."""
    if not (server.database_url or "").startswith("postgresql"):
        return False
    import sqlalchemy as sa

    url = sa.make_url(server.database_url or "").set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()
    return True


def read_adapters(report: Report, sizes: Sizes, models: list[str], count: int, suffix: str) -> None:
    """What a serving fleet polls: the enabled adapters of a base model (a filtered first page), and one adapter."""
    server = report.server
    pick = random.Random(11)
    owners = models[: count // ADAPTERS_PER_MODEL]

    def enabled_of_model(_i: int) -> Request:
        params = {"model": f"default/{pick.choice(owners)}", "enabled": "true", "page_size": 100}
        return ("GET", f"{WS}/adapters", {"params": params})

    def one(_i: int) -> Request:
        return ("GET", f"{WS}/adapters/lora-{pick.randrange(count):07d}", {})

    label = f"adapters: enabled adapters of a model, first page, c=16{suffix}"
    report.results.append(asyncio.run(drive(server, label, enabled_of_model, 16, seconds=sizes.list_seconds)))
    label = f"adapters: GET one adapter by name, c=32{suffix}"
    report.results.append(asyncio.run(drive(server, label, one, 32, seconds=sizes.read_seconds)))


def _create_nth(kind: str, names: list[str], i: int) -> Request:
    return create_model(kind, names[i])


def bench_registry(server: Server, sizes: Sizes, scale: bool, use_wrk: bool) -> Report:
    report = Report(server)
    log(f"starting {server.label} ...")
    server.start()
    log(f"{server.label} answered after {server.cold_start:.2f} s")
    try:
        settled = server.settle()
        log(f"{server.label} settled {settled:.1f} s after its first answer")
        kind = server.kind
        if kind == "modelyard":
            setup_modelyard(server)
        c1 = [f"c1-{i:06d}" for i in range(sizes.create)]
        c16 = [f"c16-{i:06d}" for i in range(sizes.create)]
        for names, concurrency in ((c1, 1), (c16, 16)):
            label = f"create: {sizes.create} models, c={concurrency}"
            log(f"{server.label}: {label}")
            report.results.append(
                asyncio.run(drive(server, label, functools.partial(_create_nth, kind, names), concurrency, len(names)))
            )
        targets = c16[: sizes.version_models]
        label = f"versions: 5 on each of {len(targets)} models, c=16"
        log(f"{server.label}: {label}")
        report.results.append(
            asyncio.run(
                drive(server, label, lambda i: create_version(kind, targets[i // 5], i % 5), 16, total=5 * len(targets))
            )
        )
        if kind == "modelyard":
            waited, left = wait_versions_ready(server, targets, timeout=300)
            report.notes.append(
                f"its worker validated the {5 * len(targets)} versions {waited:.1f} s after the last API call "
                f"returned ({left} models still had CREATING versions)"
                if left
                else f"its worker had validated all {5 * len(targets)} versions {waited:.1f} s after the last API "
                "call returned (waited for before the reads)"
            )
        names = c1 + c16
        log(f"{server.label}: reads and lists at {len(names)} models")
        read_and_list(report, sizes, names, len(names), "", use_wrk)
        if kind == "modelyard":
            seconds = seed_adapters(server, c16, len(names))
            report.notes.append(f"{len(names)} adapters written into its database in {seconds:.1f} s (not timed)")
            read_adapters(report, sizes, c16, len(names), "")
        if use_wrk:
            # Last, so that no workload above sees the rows these add (wrk runs for a time, not a count).
            for concurrency in (1, 16):
                label = f"create: new models for {sizes.read_seconds:.0f} s, c={concurrency}"
                log(f"{server.label}: {label} (wrk)")
                prefix = f"wrk-c{concurrency}"
                report.results.append(run_wrk_creates(server, label, prefix, sizes.read_seconds, concurrency))
            label = f"versions: new versions of {len(targets)} models for {sizes.read_seconds:.0f} s, c=16"
            log(f"{server.label}: {label} (wrk)")
            report.results.append(run_wrk_versions(server, label, targets, sizes.read_seconds, 16))
            if kind == "modelyard":
                waited, left = wait_versions_ready(server, targets, timeout=300)
                report.notes.append(
                    f"its worker validated the versions wrk created {waited:.1f} s after wrk stopped"
                    + (f" ({left} models still had CREATING versions)" if left else "")
                )
        if scale:
            more = sizes.scale - len(names)
            grown = [f"s-{i:07d}" for i in range(more)]
            log(f"{server.label}: growing to {sizes.scale} models through the API (c=16) ...")
            report.results.append(
                asyncio.run(
                    drive(
                        server,
                        f"scale: create {more} more models, c=16",
                        lambda i: create_model(kind, grown[i]),
                        16,
                        total=more,
                    )
                )
            )
            if kind == "modelyard":
                seconds = seed_adapters(server, c16 + grown, sizes.scale)
                report.notes.append(f"grown to {sizes.scale} adapters in its database in {seconds:.1f} s (not timed)")
            if analyze_postgres(server):
                report.notes.append("VACUUM ANALYZE run after the growth (autovacuum is off on this PostgreSQL)")
            read_and_list(report, sizes, names + grown, sizes.scale, f" @{sizes.scale}", use_wrk)
            if kind == "modelyard":
                read_adapters(report, sizes, c16 + grown, sizes.scale, f" @{sizes.scale}")
    finally:
        server.stop()
    return report


def cold_starts(count: int) -> list[float]:
    """`modelyard serve` started `count` times, each on a new empty SQLite database with no other server running:
    seconds from the process's start to the first 200."""
    times = []
    for i in range(count):
        server = modelyard_server(RUN / f"cold-{i}", None, "modelyard (SQLite)")
        log(f"cold start {i + 1} of {count} ...")
        server.start()
        server.stop()
        times.append(server.cold_start)
    return times


def bench_ceiling(server: Server, sizes: Sizes, use_wrk: bool) -> Report:
    report = Report(server)
    log(f"starting {server.label} ...")
    server.start()
    try:
        names = [f"c16-{i:06d}" for i in range(sizes.create)]
        pick = random.Random(7)
        label = "read: GET one model by name, c=32"
        report.results.append(
            asyncio.run(
                drive(
                    server,
                    label,
                    lambda _i: ("GET", get_path("ceiling", pick.choice(names)), {}),
                    32,
                    seconds=sizes.read_seconds,
                )
            )
        )
        if use_wrk:
            paths = [get_path("ceiling", n) for n in names]
            report.results.append(run_wrk(server, label, paths, sizes.read_seconds, 32))
    finally:
        server.stop()
    return report


# -- the tables --------------------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN is not equal to itself


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and a == a and b == b else "n/a"


def print_tables(
    reports: list[Report], versions: dict[str, str], args: argparse.Namespace, sizes: Sizes, cold: list[float]
) -> None:
    print()
    print(
        f"Command: `{' '.join(['.venv/bin/python', 'bench/registry.py', *sys.argv[1:]])}` "
        f"({time.strftime('%Y-%m-%d')}); {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, Python {platform.python_version()}."
    )
    print(
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; client httpx {httpx.__version__}"
        + (
            f" and {subprocess.run([WRK, '-v'], capture_output=True, text=True).stdout.split()[1]} (wrk)"
            if WRK and args.wrk
            else ""
        )
        + "."
    )
    print()
    print("| workload | server | client | requests | errors | req/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for report in reports:
        for r in report.results:
            extra = f" ({r.note})" if r.note else ""
            print(
                f"| {r.workload}{extra} | {r.server} | {r.client} | {r.requests} | {r.errors} | "
                f"{fmt(r.throughput, 0)} | {fmt(r.p50)} | {fmt(r.p95)} | {fmt(r.p99)} |"
            )
    print()
    print(
        "| server | cold start (process start to first 200) | peak RSS of the process tree (sum) | peak PSS (sum) "
        "| processes |"
    )
    print("|---|---|---|---|---|")
    for report in reports:
        s = report.server
        assert s.sampler is not None
        print(
            f"| {s.label} | {s.cold_start:.2f} s | {s.sampler.peak_rss / 1024:.0f} MiB | "
            f"{s.sampler.peak_pss / 1024:.0f} MiB | {s.sampler.peak_procs} |"
        )
    errors = [(r.server, r.workload, r.first_error) for rep in reports for r in rep.results if r.first_error]
    for server, workload, message in errors:
        print(f"\nFirst error of {server}, {workload}: `{message}`")
    for report in reports:
        for note in report.notes:
            print(f"\n{report.server.label}: {note}.")

    mlflows = [r for r in reports if r.server.kind == "mlflow"]
    ceilings = [r for r in reports if r.server.kind == "ceiling"]
    if cold:
        print(
            f"\nCold start of `modelyard serve` alone (empty SQLite database, nothing else running), {len(cold)} "
            f"starts: {', '.join(f'{t:.2f}' for t in cold)} s, median {statistics.median(cold):.2f} s.\n"
        )
    for mine in (r for r in reports if r.server.kind == "modelyard"):
        # Against MLflow on the same kind of database (the "same workloads and database kind").
        mlflow = next((r for r in mlflows if r.server.on_postgres == mine.server.on_postgres), None)
        if mlflow is not None:
            print(
                f"\nRatios, {mine.server.label} / {mlflow.server.label}; throughput target >= 10, p99 target <= 0.20:\n"
            )
            print("| workload | client | req/s ratio | p99 ratio | throughput target | p99 target |")
            print("|---|---|---|---|---|---|")
            theirs = {(r.workload, r.client): r for r in mlflow.results}
            for r in mine.results:
                other = theirs.get((r.workload, r.client))
                if other is None:
                    continue
                tr = r.throughput / other.throughput if other.throughput else float("nan")
                pr = r.p99 / other.p99 if other.p99 else float("nan")
                check = "versions" not in r.workload  # the issue sets no version target beyond "create"
                print(
                    f"| {r.workload} | {r.client} | {fmt(tr, 2)} | {fmt(pr, 2)} | "
                    f"{('met' if tr >= 10 else 'not met') if check else '-'} | "
                    f"{('met' if pr <= 0.2 else 'not met') if check else '-'} |"
                )
            sm, so = mine.server.sampler, mlflow.server.sampler
            assert sm is not None
            assert so is not None
            print(
                f"| peak RSS (sum of the tree) | - | {ratio(sm.peak_rss, so.peak_rss)} | - | "
                f"{'met' if sm.peak_rss * 5 <= so.peak_rss else 'not met'} (<= 0.20) | - |"
            )
            print(
                f"| peak PSS (sum of the tree) | - | {ratio(sm.peak_pss, so.peak_pss)} | - | "
                f"{'met' if sm.peak_pss * 5 <= so.peak_pss else 'not met'} (<= 0.20) | - |"
            )
            # The target is absolute: judged on the starts alone on an idle machine when there are any (the start
            # inside the run follows MLflow's shutdown), else on the start inside the run.
            alone = statistics.median(cold) if cold and "SQLite" in mine.server.label else mine.server.cold_start
            print(
                f"| cold start | - | {ratio(mine.server.cold_start, mlflow.server.cold_start)} | - | "
                f"{'met' if alone < 2 else 'not met'} (< 2 s absolute, {alone:.2f} s) | - |"
            )
        grown = [r for r in mine.results if " @" in r.workload]
        if grown:
            base = {(r.workload, r.client): r for r in mine.results if " @" not in r.workload}
            print()
            print(f"Growth, {mine.server.label}: latency at the larger size / at the base size (target <= 1.5):")
            print()
            print("| workload | client | p50 ratio | p99 ratio | target (p50) |")
            print("|---|---|---|---|---|")
            for r in grown:
                before = base.get((r.workload.split(" @")[0], r.client))
                if before is None:
                    continue
                p50 = r.p50 / before.p50 if before.p50 else float("nan")
                print(
                    f"| {r.workload} | {r.client} | {fmt(p50, 2)} | {ratio(r.p99, before.p99)} | "
                    f"{'met' if p50 <= 1.5 else 'not met'} |"
                )
            print()
        shares = [
            (ceiling, r, top)
            for ceiling in ceilings
            for r in mine.results
            if r.workload.startswith("read:") and "@" not in r.workload
            for top in ceiling.results
            if top.client == r.client
        ]
        if shares:
            # A table of its own: after the growth table, these rows used to read as part of it.
            print(f"\nGET by name, {mine.server.label} / a bare ceiling (target >= 0.10):\n")
            print("| ceiling | client | req/s ratio | p99 ratio | target |")
            print("|---|---|---|---|---|")
            for ceiling, r, top in shares:
                share = r.throughput / top.throughput if top.throughput else float("nan")
                print(
                    f"| {ceiling.server.label} | {r.client} | {fmt(share, 3)} | {ratio(r.p99, top.p99)} | "
                    f"{'met' if share >= 0.10 else 'not met'} |"
                )


# -- main --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    dbname = f"modelyard_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes, under 3 minutes")
    parser.add_argument("--postgres", action="store_true", help="also modelyard on PostgreSQL")
    parser.add_argument("--scale", action="store_true", help="grow to 100,000 models through the APIs, read again")
    parser.add_argument("--no-sqlite", dest="sqlite_run", action="store_false", help="no modelyard on SQLite")
    parser.add_argument("--no-mlflow", dest="mlflow_run", action="store_false", help="modelyard and the ceiling only")
    parser.add_argument("--scale-size", type=int, default=100_000, help="rows to grow to with --scale")
    parser.add_argument("--no-wrk", dest="wrk", action="store_false", help="do not use wrk even if installed")
    parser.add_argument(
        "--mlflow", default="mlflow", help="pip requirement for a new MLflow venv (e.g. mlflow==3.17.2)"
    )
    parser.add_argument("--ceiling-workers", type=int, default=1, help="uvicorn processes of the ceiling app")
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="uvicorn processes of modelyard on SQLite (`make run` uses 1; more serve more reads)",
    )
    parser.add_argument(
        "--pg-workers",
        type=int,
        default=2,
        help="uvicorn processes of modelyard on PostgreSQL (and of a second ceiling with as many processes)",
    )
    args = parser.parse_args()
    sizes = dataclasses.replace(QUICK if args.quick else FULL, scale=args.scale_size)
    use_wrk = bool(WRK) and args.wrk
    if not use_wrk:
        log("wrk not used (not installed, or --no-wrk): the GET rows use httpx only")

    WORK.mkdir(parents=True, exist_ok=True)
    mlflow_versions = ensure_mlflow_venv(args.mlflow, args.postgres) if args.mlflow_run else {}
    # pip leaves compiled bytecode beside an installed package (MLflow's venv has it). An editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 (as on the bench machine) would compile every modelyard module again at each start.
    compileall.compile_dir(str(Path(modelyard.__file__).parent), quiet=1)
    import importlib.metadata as md

    versions = {
        "MLflow": mlflow_versions.get("mlflow", "not run"),
        "MLflow's SQLAlchemy": mlflow_versions.get("SQLAlchemy", "-"),
        "MLflow's uvicorn": mlflow_versions.get("uvicorn", "-"),
        "MLflow's Flask": mlflow_versions.get("Flask", "-"),
        "MLflow's psycopg": mlflow_versions.get("psycopg", "-"),
        "modelyard": md.version("modelyard"),
        "uvicorn": md.version("uvicorn"),
        "FastAPI": md.version("fastapi"),
        "Starlette": md.version("starlette"),
        "SQLAlchemy": md.version("sqlalchemy"),
    }
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    reports: list[Report] = []
    cold: list[float] = []
    started = time.perf_counter()
    try:
        if args.mlflow_run:
            reports.append(bench_registry(mlflow_server(RUN), sizes, args.scale, use_wrk))
        if args.sqlite_run:
            n = args.sqlite_workers
            label = "modelyard (SQLite)" if n == 1 else f"modelyard (SQLite, {n} processes)"
            server = modelyard_server(RUN, None, label, n, list_cache=not args.scale)
            reports.append(bench_registry(server, sizes, args.scale, use_wrk))
        if args.postgres and args.mlflow_run:
            with postgres_database() as url:
                reports.append(bench_registry(mlflow_server(RUN, url), sizes, args.scale, use_wrk))
        if args.postgres:
            n = args.pg_workers
            label = f"modelyard (PostgreSQL, {n} process{'es' if n > 1 else ''})"
            with postgres_database() as url:
                server = modelyard_server(RUN, url, label, n, list_cache=not args.scale)
                reports.append(bench_registry(server, sizes, args.scale, use_wrk))
        # A ceiling with as many processes as each modelyard server, so every ratio compares like with like.
        ceilings = {args.ceiling_workers}
        ceilings |= {args.sqlite_workers} if args.sqlite_run else set()
        ceilings |= {args.pg_workers} if args.postgres else set()
        for workers in sorted(ceilings):
            reports.append(bench_ceiling(ceiling_server(RUN, workers), sizes, use_wrk))
        if args.sqlite_run:
            cold = cold_starts(3)
    finally:
        for report in reports:
            report.server.stop()
        shutil.rmtree(RUN, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")
    print_tables(reports, versions, args, sizes, cold)


if __name__ == "__main__":
    main()
