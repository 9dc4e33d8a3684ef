"""`Idempotency-Key` on POST: a retry with the same key and body gets the first answer again; the same key with
another body is a 422. The remembered answer is written in the request's own transaction, so it exists exactly
when the change it describes was committed; failed requests leave no trace and may be retried."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from modelyard.db.base import utcnow
from modelyard.errors import ValidationFailed
from modelyard.kit.tables import IdempotencyKey

MAX_KEY_LENGTH = 255
_REPLAYED_HEADERS = ("content-type", "location", "etag")


def request_fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            detail=[{"loc": ["header", "Idempotency-Key"], "msg": "invalid idempotency key", "type": "value_error"}],
        )


def _replay(row: IdempotencyKey, fingerprint: str) -> Response:
    if row.request_hash != fingerprint:
        raise ValidationFailed(
            f"Idempotency-Key '{row.key}' was already used with another request",
            error_code="IDEMPOTENCY_KEY_REUSED",
            solution_msg="Use a new Idempotency-Key for a different request",
            detail=[
                {"loc": ["header", "Idempotency-Key"], "msg": "key reused with another body", "type": "value_error"}
            ],
        )
    headers = dict(row.response_headers)
    headers["Idempotent-Replayed"] = "true"
    return Response(content=row.response_body, status_code=row.status_code, headers=headers)


def begin(session: Session, user_id: str, key: str, fingerprint: str, ttl_seconds: int) -> Response | None:
    """Claim the key in the current transaction, or answer what its first request answered.

    The claim is a row insert: a concurrent request with the same key waits on the primary key until the first
    one commits (PostgreSQL) or is serialised behind it (SQLite's single writer), then replays its answer."""
    row = session.get(IdempotencyKey, (user_id, key))
    if row is not None and row.created_at < utcnow() - timedelta(seconds=ttl_seconds):
        session.delete(row)
        session.flush()
        row = None
    if row is not None:
        return _replay(row, fingerprint)
    try:
        with session.begin_nested():
            session.add(
                IdempotencyKey(user_id=user_id, key=key, request_hash=fingerprint, status_code=0, response_body=b"")
            )
    except IntegrityError:
        winner = session.scalar(
            sa.select(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )
        if winner is None:
            raise
        return _replay(winner, fingerprint)
    return None


def complete(session: Session, user_id: str, key: str, response: Response) -> None:
    """Record the answer on the claimed key, in the same transaction as the change it describes."""
    row = session.get(IdempotencyKey, (user_id, key))
    if row is None:  # pragma: no cover - begin() always claims first
        return
    row.status_code = response.status_code
    row.response_headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
    row.response_body = bytes(response.body)


def purge_expired(session: Session, ttl_seconds: int) -> int:
    result = session.execute(
        sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - timedelta(seconds=ttl_seconds))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
