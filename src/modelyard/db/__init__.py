"""The metadata database: engine and sessions, base types, migrations."""

from modelyard.db.base import Base, JSONType, UTCDateTime, new_id, utcnow
from modelyard.db.engine import Database

__all__ = ["Base", "Database", "JSONType", "UTCDateTime", "new_id", "utcnow"]
