"""Active-learning batch selection (uncertain AND good enough, then spread out) and the annotation
round trip's file formats, without Spark."""
