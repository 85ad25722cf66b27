"""Reward model (pairwise, Bradley-Terry) and quality classifier (pointwise) on any Hugging Face
encoder: inputs, automatic negatives, training, and batch scoring, without Spark."""
