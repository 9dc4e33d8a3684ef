"""Domain-free helpers shared by every resource: schemas, pagination, filters, ETags, idempotency."""
