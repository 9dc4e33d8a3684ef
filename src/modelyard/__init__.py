"""modelyard: a self-hosted registry for large language models, their versions and adapters."""

__version__ = "0.1.0"
