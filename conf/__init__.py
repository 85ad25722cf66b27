"""Bundled YAML configs, read with importlib.resources so they also work from a wheel."""
