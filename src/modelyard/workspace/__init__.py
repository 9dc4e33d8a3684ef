"""Workspaces, which scope every resource, and their members."""
