"""Refinery's logic as pure functions over Arrow / pandas / numpy batches (no SparkSession here)."""
