"""Quality signals: Gopher, C4 and FineWeb heuristics, language ID and PII scrubbing, as pure
functions over Arrow batches (no Spark inside)."""
