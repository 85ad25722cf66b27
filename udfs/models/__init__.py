"""Model scoring: sentence embeddings and causal-LM perplexity over batches of texts, GPU-ready,
with the models loaded once per Python worker (no Spark inside)."""
