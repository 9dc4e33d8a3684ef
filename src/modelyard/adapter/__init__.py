"""Adapters (LoRA, P-tuning, ...) bound to a base model version, checked against it from their real files."""
