"""Tables of the request machinery itself (not of any domain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """The first successful answer to a POST sent with an `Idempotency-Key`, replayed to retries."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    response_body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
