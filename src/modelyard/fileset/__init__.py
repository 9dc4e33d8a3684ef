"""Filesets: named, workspace-scoped sets of files (the files behind models and adapters)."""
