"""The inspection job of an adapter whose files are remote (Hugging Face): resolve and pin the repository, read
adapter_config.json and the safetensors headers, check against the base version, and record the report. An adapter
found incompatible is disabled, with an event saying why."""

from __future__ import annotations

from typing import Any

from modelyard.adapter import inspection, service
from modelyard.adapter.tables import Adapter
from modelyard.inspect.errors import InspectError
from modelyard.job.registry import JobContext, job_kind
from modelyard.model import repository as models
from modelyard.model.files import HubSource, SourceError
from modelyard.model.sources import SourceRef


def _give_up(ctx: JobContext, error: str) -> None:
    with ctx.transaction() as session:
        report = {**service.UNKNOWN, "warnings": [f"The adapter's files could not be inspected: {error}"]}
        service.finish_inspection(session, ctx.payload["adapter_id"], report, None, None, {})


@job_kind(service.INSPECT_JOB, on_give_up=_give_up)
def inspect_adapter(ctx: JobContext) -> dict[str, Any]:
    with ctx.transaction() as session:
        adapter = session.get(Adapter, ctx.payload["adapter_id"])
        if adapter is None:
            return {"skipped": "deleted"}
        version = models.get_version_by_id(session, adapter.model_version_id) if adapter.model_version_id else None
        model = models.get_model_by_id(session, adapter.model_id)
        name, _, revision = adapter.huggingface_name.partition("@")
        finetuning_type, lora_config = adapter.finetuning_type, adapter.lora_config
        model_name = model.name if model else None
        session.expunge_all()
    source = HubSource(SourceRef("hf", repo_id=name, revision=revision or "main"))
    try:
        result = inspection.inspect_adapter(source, version, finetuning_type, lora_config, model_name)
    except (SourceError, InspectError) as exc:
        report = {
            "status": "unknown",
            "base_version": version.name if version else None,
            "checks": [],
            "warnings": [str(exc)],
        }
        with ctx.transaction() as session:
            service.finish_inspection(session, ctx.payload["adapter_id"], report, None, None, {})
        return {"status": "unknown", "message": str(exc)}
    with ctx.transaction() as session:
        service.finish_inspection(
            session, ctx.payload["adapter_id"], result.compatibility, result.lora_config, result.digest, source.pinned()
        )
    return {"status": result.compatibility["status"]}
