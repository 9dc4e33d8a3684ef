"""`modelyard serve` from a fresh home: migrates, creates the admin and its token file, serves the API, and
runs its job worker as a child process (what `make run` does)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_HOME": str(home), "MODELYARD_PORT": str(port)})
    return env


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`modelyard serve` started and answering /healthz (its stderr in the failure when it does not)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "serve", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{env['MODELYARD_PORT']}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate()[1].decode()[-3000:])
        time.sleep(0.1)


@pytest.mark.slow
def test_serve_from_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    env = _env(home, port)
    base = f"http://127.0.0.1:{port}"
    proc = _serve(env)
    try:
        token_file = home / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "modelyard"
        assert httpx.get(f"{base}/readyz").status_code == 200
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["memberships"] == [{"workspace": "default", "role": "admin"}]
        assert (home / "modelyard.db").exists()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    # The token is printed once, on stdout; the docs URL on stderr.
    assert out.decode().strip() == token
    assert f"http://127.0.0.1:{port}/docs" in err.decode()

    # A second start keeps the same admin and token, and does not print the secret again.
    proc = _serve(env)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/v1/me", headers={"X-Auth-Token": token}).status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert token not in out.decode()
    assert "admin-token" in err.decode()


@pytest.mark.slow
def test_two_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    """`serve --workers 2` on SQLite: both processes answer and write, and a token revoked through one of them is
    refused by both at once, though each had it cached (the revision file beside the database)."""
    home = tmp_path / "home"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(_env(home, port), "--workers", "2")
    try:
        admin = {"Authorization": f"Bearer {(home / 'admin-token').read_text().strip()}"}
        created = httpx.post(f"{base}/v1/tokens", json={"name": "fleet"}, headers=admin)
        assert created.status_code == 201, created.text
        fleet = {"Authorization": f"Bearer {created.json()['token']}"}
        for i in range(40):  # a connection each: the processes take turns accepting them, and each caches the token
            with httpx.Client(base_url=base, headers=fleet) as c:
                assert c.post("/v1/workspaces/default/models", json={"name": f"m{i}"}).status_code == 201
                assert c.get("/v1/me").status_code == 200
        with httpx.Client(base_url=base, headers=admin) as c:
            assert c.delete(f"/v1/tokens/{created.json()['id']}").status_code == 204
        for _ in range(40):
            with httpx.Client(base_url=base, headers=fleet) as c:
                assert c.get("/v1/workspaces/default/models/m0").status_code == 401
        listed = httpx.get(f"{base}/v1/workspaces/default/models", headers=admin).json()
        assert listed["pagination"]["total_results"] == 40
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def _workers_of(pid: int) -> list[int]:
    """The `modelyard worker` processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"worker" in argv and b"modelyard" in argv:
            found.append(int(entry.name))
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_serve_runs_its_job_worker_in_a_child_process(tmp_path: Path) -> None:
    """The worker is a child process, not a thread of the server, at a lower CPU priority: it runs the jobs, is
    started again if it dies, stops with the server, and stops by itself if the server is killed."""
    home = tmp_path / "home"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(_env(home, port))
    try:
        _wait_for(lambda: len(_workers_of(proc.pid)) == 1)
        first = _workers_of(proc.pid)[0]
        # It runs below the server's CPU priority (MODELYARD_WORKER_NICE, 10 by default): the API's callers first.
        # (It lowers its own once its settings are read.)
        _wait_for(lambda: _nice(first) == min(19, _nice(proc.pid) + 10))
        admin = {"Authorization": f"Bearer {(home / 'admin-token').read_text().strip()}"}
        with httpx.Client(base_url=base, headers=admin) as c:
            assert c.post("/v1/workspaces/default/models", json={"name": "m"}).status_code == 201
            body = {"config": {"llm_model_config": {"base_model_type": "X", "model_path": "default/nothing"}}}
            assert c.post("/v1/workspaces/default/models/m/versions", json=body).status_code == 201
            # The worker process validates it: the fileset does not exist.
            _wait_for(lambda: c.get("/v1/workspaces/default/models/m/versions/v1").json()["status"] == "FAILED")
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: _workers_of(proc.pid) not in ([], [first]))
        second = _workers_of(proc.pid)[0]
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=40)
    assert _gone(second), "the worker outlived the server"
    assert "starting it again" in err.decode()

    proc = _serve(_env(home, port))
    _wait_for(lambda: len(_workers_of(proc.pid)) == 1)
    orphan = _workers_of(proc.pid)[0]
    proc.kill()
    proc.communicate(timeout=15)
    _wait_for(lambda: _gone(orphan))
