"""The one settings class: every knob of the server, read from `MODELYARD_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Server settings. Each field is documented here and in README.md (a test keeps the two in step)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", validate_default=True)

    home: Path = Field(
        default=Path("~/.modelyard"),
        description="Data directory: the SQLite database, local files and the admin-token file live here.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the metadata database. Empty means SQLite at $MODELYARD_HOME/modelyard.db; "
        "use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    storage_url: str = Field(
        default="",
        description="Where fileset contents are stored. Empty means the local directory $MODELYARD_HOME/files; "
        "file:///path for another directory; s3://bucket/prefix for an S3-compatible store.",
    )
    s3_endpoint_url: str = Field(
        default="", description="Endpoint of the S3-compatible store (empty: AWS's default endpoint)."
    )
    host: str = Field(default="127.0.0.1", description="Address `modelyard serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `modelyard serve` listens on.")
    allowed_local_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories (separated by ':' like PATH) under which local paths may be registered; "
        "empty means local paths are refused.",
    )
    worker: bool = Field(
        default=True, description="Run a background-job worker beside `modelyard serve`, as its child process."
    )
    worker_concurrency: int = Field(default=1, ge=1, le=64, description="Worker threads per worker process.")
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How far below normal a worker process's CPU priority is (Unix nice): when the machine is busy, "
        "the API's requests come first and the worker catches up after. 0 keeps it equal.",
    )
    job_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a claimed job stays leased without a heartbeat before another worker may take it over.",
    )
    job_poll_seconds: float = Field(default=1.0, gt=0, description="How often an idle worker looks for jobs.")
    job_max_attempts: int = Field(default=5, ge=1, description="Attempts before a failing job is marked FAILED.")
    job_backoff_seconds: float = Field(
        default=2.0, ge=0, description="Delay before the first retry of a failed job; doubles on each retry."
    )
    job_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Python modules (comma-separated) imported by workers to register job kinds.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field(default="text", description="`text` for people, `json` for machines.")
    max_json_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest accepted JSON request body (413 above)."
    )
    max_upload_bytes: int = Field(
        default=50 * 1024**3, ge=1, description="Largest accepted file upload into a fileset (413 above)."
    )
    token_cache_seconds: float = Field(
        default=60,
        ge=0,
        description="How long a server process may reuse a token lookup, and the caller's role in a workspace (0: look "
        "both up on every request). Revoking a token, changing or deleting a user, changing a membership, and changing "
        "or deleting a workspace take effect at once in every process (PostgreSQL: through LISTEN/NOTIFY).",
    )
    list_cache_mb: int = Field(
        default=32,
        ge=0,
        description="Memory each server process may use to keep answers of polled lists (the models of a workspace, "
        "its adapters) while the database is unchanged; any commit, by any process, invalidates them (0: off).",
    )
    idempotency_ttl_seconds: int = Field(
        default=24 * 3600, ge=60, description="How long an `Idempotency-Key` is remembered."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allowed_local_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part).expanduser().resolve() for part in value.split(":") if part.strip()]
        return value

    @field_validator("job_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _defaults_from_home(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'modelyard.db'}"
        elif self.database_url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            self.database_url = "postgresql+psycopg://" + self.database_url.split("://", 1)[1]
        if not self.storage_url:
            self.storage_url = (self.home / "files").as_uri()
        return self

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
