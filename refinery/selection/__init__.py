"""The selection methods' Spark side: each module runs one method over the candidate pool
(``pool.py``) with the kernels in ``udfs/select`` and writes its table."""
