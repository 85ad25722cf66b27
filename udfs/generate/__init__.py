"""Text generation back-ends behind one interface (local transformers model, OpenAI-compatible HTTP),
with a crash-safe journal so a re-run never pays twice for a finished request."""
