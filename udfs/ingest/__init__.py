"""Ingest logic: containers (how records sit in files), formats (what they mean), the reader."""
