"""Liveness, readiness and metrics endpoints (open, no token)."""
