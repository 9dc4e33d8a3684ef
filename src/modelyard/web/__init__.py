"""The server-rendered web UI at /ui: pages over the same services and access rules as the API (endpoints), its
session and CSRF tokens (session), and its HTML answers, headers and error pages (rendering)."""

from modelyard.web.endpoints import router
from modelyard.web.rendering import install_html_errors

__all__ = ["install_html_errors", "router"]
