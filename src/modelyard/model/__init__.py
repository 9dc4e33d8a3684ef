"""Models (the LLMs) and their versions, created asynchronously and validated from their files."""
