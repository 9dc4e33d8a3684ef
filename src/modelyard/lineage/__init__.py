"""Lineage records (Cloudera): datasets, prompts and fine-tuning jobs, which adapters link to."""
