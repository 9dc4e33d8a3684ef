"""Background work of filesets: removing blobs that no file refers to any more."""

from __future__ import annotations

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.fileset.service import collect_garbage
from modelyard.job.registry import maintenance_task
from modelyard.storage import create_store


@maintenance_task("fileset.collect_garbage")
def collect_blob_garbage(db: Database, settings: Settings) -> None:
    collect_garbage(db, create_store(settings))
