"""Balance: at most ``cap`` records per group (an input column, a JSON field of ``meta``, or the
one-pass cluster), the ones kept picked in a seeded random order (a hash of seed and doc_id), so
no cluster or task type dominates the selection."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from refinery.config import BalanceSection, ConfigError
from refinery.frames import dropped_frame

NO_GROUP = "(none)"


def group_column(pool: DataFrame, by: str) -> Column:
    if by.startswith("meta."):
        if "meta" not in pool.columns:
            raise ConfigError(f"select.balance.by = {by!r}: the input has no meta column")
        return F.get_json_object("meta", "$." + by[len("meta."):])
    if by not in pool.columns:
        raise ConfigError(f"select.balance.by = {by!r} is not a column of the input ({', '.join(pool.columns)}), "
                          "meta.<key>, or 'cluster'")
    return F.col(by).cast("string")


def balance(pool: DataFrame, s: BalanceSection, clusters: DataFrame | None) -> tuple[DataFrame, DataFrame, list[list[object]]]:
    """(kept: doc_id, source, group; dropped rows; [group, before, after] for the largest groups)."""
    frame = pool.join(clusters.select("doc_id", F.col("cluster_id").alias("cluster")), "doc_id") \
        if s.by == "cluster" and clusters is not None else pool
    grouped = frame.select("doc_id", "source", F.coalesce(group_column(frame, s.by), F.lit(NO_GROUP)).alias("group"))
    order = Window.partitionBy("group").orderBy(F.xxhash64(F.lit(s.seed), "doc_id"), "doc_id")
    ranked = grouped.withColumn("_rank", F.row_number().over(order)).localCheckpoint(eager=True)
    kept = ranked.where(F.col("_rank") <= s.cap).drop("_rank")
    dropped = dropped_frame(ranked.where(F.col("_rank") > s.cap), "select.balance",
                            F.format_string(f"balance: group %s over the cap of {s.cap} ({s.by})", F.col("group")),
                            F.col("_rank"), F.lit(s.cap))
    sizes = (ranked.groupBy("group").agg(F.count(F.lit(1)).alias("before"),
                                         F.sum((F.col("_rank") <= s.cap).cast("long")).alias("after"))
             .orderBy(F.desc("before"), "group").limit(10).collect())
    return kept, dropped, [[r.group, r.before, r.after] for r in sizes]
