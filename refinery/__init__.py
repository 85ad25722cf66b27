"""Refinery: raw text to LLM training data on PySpark and Delta Lake."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("refinery")
except PackageNotFoundError:  # running from a zip on --py-files without metadata
    __version__ = "0+unknown"
