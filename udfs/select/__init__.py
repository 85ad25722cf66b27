"""Selection kernels over numpy batches: nearest neighbours, greedy leaders, K-Center-Greedy, DSIR."""
