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


@job_kind("test.succeed_with_change")
def succeed_with_change(ctx: JobContext) -> dict[str, Any]:
    """Creates a workspace and records the job's success in the same transaction; with `steal`, another worker
    has taken the job over before that transaction."""
    from modelyard.job.tables import Job
    from modelyard.workspace.tables import Workspace

    result = {"made": ctx.payload["name"]}
    if ctx.payload.get("steal"):
        with ctx.transaction() as other:  # as another worker would, once this one's lease lapsed
            job = other.get(Job, ctx.job_id)
            assert job is not None
            job.locked_by = "thief"
    with ctx.transaction() as session:
        session.add(Workspace(name=ctx.payload["name"]))
        ctx.succeed(session, result)
        if ctx.payload.get("fail_after"):
            raise RuntimeError("the transaction fails after the success was recorded in it")
    return result
