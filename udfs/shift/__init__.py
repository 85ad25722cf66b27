"""Distribution shift between a fine-tuning set and a reference sample: two-sample statistics."""
