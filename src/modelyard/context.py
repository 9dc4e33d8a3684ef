"""What the running app holds: settings, the database, and the hooks the request boundary needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.identity.principals import PrincipalCache
from modelyard.kit.answer_cache import AnswerCache
from modelyard.storage import BlobStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    store: BlobStore
    principals: PrincipalCache
    answers: AnswerCache  # polled lists, kept while the database has not changed (modelyard.db.changes)
    # Set by the app: resolves the caller of a request (see modelyard.auth.authenticate).
    authenticate: Callable[..., Any]
