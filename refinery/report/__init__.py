"""The run report: what each stage kept and dropped, and why, as one self-contained HTML page."""
