"""Canonical records -> the formats fine-tuning libraries read (TRL / LLaMA-Factory conventions)."""
