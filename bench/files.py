"""Fileset throughput: upload and download of one large file through the API, against `cp` of the same file on
the same disk, and the server's peak memory (VmHWM) while it moves the bytes.

    .venv/bin/python bench/files.py --size-mib 1024

Starts `modelyard serve` (SQLite, local store, no worker) on a free loopback port with a fresh home under
bench/.work, and removes it afterwards. Prints a Markdown table for bench/RESULTS.md."""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
CHUNK = 1024 * 1024
CURL = shutil.which("curl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as handle:
        for i in range(size // CHUNK):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_cp(source: Path, target: Path) -> float:
    target.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def timed_cp_sync(source: Path, target: Path) -> float:
    """cp, then fsync of the copy: the durable baseline (an upload is on disk before it is acknowledged)."""
    target.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    fd = os.open(target, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def timed_download(base: str, path: str, token: str, target: Path) -> float:
    """GET into a file through 4 MiB reads and writes. Not curl: curl writes what it receives 8 KiB at a time
    (136,000 write calls for 1 GiB, about 2 s of system time here), which made it, not the server, the limit."""
    host, port = base.removeprefix("http://").split(":")
    buffer = memoryview(bytearray(4 * CHUNK))
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"download answered {response.status}")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while received := response.readinto(buffer):
                os.write(fd, buffer[:received])
        finally:
            os.close(fd)
    finally:
        connection.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    source = WORK / "source.bin"
    print(f"writing a {args.size_mib} MiB test file ...", file=sys.stderr)
    digest = make_file(source, size)

    port = free_port()
    home = WORK / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(
        {
            "MODELYARD_HOME": str(home),
            "MODELYARD_PORT": str(port),
            "MODELYARD_WORKER": "false",
            "MODELYARD_LOG_LEVEL": "WARNING",
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
        token = (home / "admin-token").read_text().strip()
        idle_rss = rss_kib(server.pid, "VmRSS")
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)
        http.post("/v1/workspaces/default/filesets", json={"name": "bench"}).raise_for_status()
        url = "/v1/workspaces/default/filesets/bench/-/"

        cp_times, cps_times, up_times, down_times = [], [], [], []
        up_cpu, down_cpu = [], []
        for run in range(args.runs):
            cp_times.append(timed_cp(source, WORK / "copy.bin"))
            cps_times.append(timed_cp_sync(source, WORK / "copy.bin"))
            # A new path each run, and bytes the store has not seen, so every upload writes the whole file.
            with source.open("r+b") as handle:
                handle.write(run.to_bytes(8, "big") + b"run-mark")
            target = WORK / "download.bin"
            if CURL:
                # A compiled client, so the client's own cost does not hide the server's.
                auth = f"Authorization: Bearer {token}"
                os.sync()  # every operation starts with no dirty pages waiting for writeback
                cpu = cpu_seconds(server.pid)
                started = time.perf_counter()
                subprocess.run(
                    [
                        CURL,
                        "-sf",
                        "-o",
                        os.devnull,
                        "-T",
                        str(source),
                        "-H",
                        auth,
                        "-H",
                        "Content-Type: application/octet-stream",
                        base + url + f"run-{run}.bin",
                    ],
                    check=True,
                )
                up_times.append(time.perf_counter() - started)
                up_cpu.append(cpu_seconds(server.pid) - cpu)
                os.sync()
                cpu = cpu_seconds(server.pid)
                down_times.append(timed_download(base, url + f"run-{run}.bin", token, target))
                down_cpu.append(cpu_seconds(server.pid) - cpu)
            else:
                started = time.perf_counter()
                with source.open("rb") as handle:
                    http.put(url + f"run-{run}.bin", content=handle).raise_for_status()
                up_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                with http.stream("GET", url + f"run-{run}.bin") as stream, target.open("wb") as out:
                    for chunk in stream.iter_raw(CHUNK):
                        out.write(chunk)
                down_times.append(time.perf_counter() - started)
            assert target.stat().st_size == size
            target.unlink()
        peak_rss = rss_kib(server.pid, "VmHWM")
        del digest
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(WORK, ignore_errors=True)

    mib = size / CHUNK
    cp_best, cps_best, up_best, down_best = (statistics.median(t) for t in (cp_times, cps_times, up_times, down_times))
    print(
        f"\n{args.size_mib} MiB file, median of {args.runs} runs, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, "
        f"client: {'curl for uploads, http.client for downloads' if CURL else 'httpx'}\n"
    )
    print("| operation | seconds | MiB/s | ratio to cp | ratio to cp + fsync |")
    print("|---|---|---|---|---|")
    rows = [
        ("cp (same disk)", cp_best),
        ("cp + fsync (durable copy)", cps_best),
        ("upload (PUT, streamed, sha256, fsync, rename)", up_best),
        ("download (GET, streamed to disk)", down_best),
    ]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {mib / seconds:.0f} | {cp_best / seconds:.2f} | {cps_best / seconds:.2f} |")
    if up_cpu:
        print(
            f"\nserver CPU time (user + system, median): {statistics.median(up_cpu):.2f} s per upload, "
            f"{statistics.median(down_cpu):.2f} s per download"
        )
    print(
        f"\nserver RSS: {idle_rss / 1024:.0f} MiB idle, {peak_rss / 1024:.0f} MiB peak (VmHWM) after "
        f"{args.runs} uploads and downloads of {args.size_mib} MiB"
    )


if __name__ == "__main__":
    main()
