"""The reward / quality models' Spark side: training examples from the lake and the distributed
TF-IDF + logistic-regression baseline."""
