"""Job kinds of the tests' own, for testing the worker itself. Loaded by workers through
MODELYARD_JOB_MODULES=tests.jobkinds (and imported directly by in-process tests)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelyard.job.registry import JobContext, PermanentJobError, job_kind


def _append(directory: str, name: str, line: str) -> None:
    with (Path(directory) / name).open("a") as handle:
        handle.write(line + "\n")
        handle.flush()


@job_kind("test.echo")
def echo(ctx: JobContext) -> dict[str, Any]:
    return {"echo": ctx.payload, "attempt": ctx.attempt}


@job_kind("test.always_fails")
def always_fails(ctx: JobContext) -> None:
    raise ValueError(f"broken on purpose (attempt {ctx.attempt})")


@job_kind("test.permanent")
def permanent(_ctx: JobContext) -> None:
    raise PermanentJobError("the input can never work")


@job_kind("test.flaky")
def flaky(ctx: JobContext) -> dict[str, Any]:
    if ctx.attempt < ctx.payload["succeed_on"]:
        raise RuntimeError("not yet")
    return {"succeeded_on": ctx.attempt}


@job_kind("test.sleep")
def sleep(ctx: JobContext) -> dict[str, Any]:
    time.sleep(ctx.payload["seconds"])
    return {"slept": ctx.payload["seconds"]}


@job_kind("test.block_first")
def block_first(ctx: JobContext) -> dict[str, Any]:
    """Hangs on its first attempt (the test kills that worker); completes on later ones."""
    directory = ctx.payload["dir"]
    _append(directory, "started", str(ctx.attempt))
    if ctx.attempt == 1:
        time.sleep(600)
    _append(directory, "completed", str(ctx.attempt))
    return {"completed_on": ctx.attempt}
