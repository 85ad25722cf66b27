"""The self-instruct loop's pure parts (Wang et al. 2023, "Self-Instruct"): prompts and parsing,
instruction filters, and ROUGE-L near-duplicate search against a large pool."""
