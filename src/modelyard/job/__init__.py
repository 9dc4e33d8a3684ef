"""Background jobs: a table of work with leases, and the worker that runs it."""
