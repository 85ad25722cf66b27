"""Spark jobs, one per stage: read Delta, call udfs/, write Delta."""
