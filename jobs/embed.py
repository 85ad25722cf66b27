"""Embedding stage: ``quality/kept`` -> ``scored/embeddings`` (doc_id, source, embedding).

``predict_batch_udf`` hands each Python worker Arrow batches of ``rows_per_call`` texts; the model
is built once per worker (``udfs/models/loading.py``) and runs on the executor's GPU when Spark
gives it one (``spark.executor.resource.gpu.amount``, ``spark.task.resource.gpu.amount``), else
on CPU. Vectors are L2-normalized float32 arrays. in = written + rejected, else the stage fails.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark.ml.functions import predict_batch_udf
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType

from refinery.config import Config
from refinery.frames import read_input, reconcile, rejected_rows, spread
from refinery.summary import StageSummary
from refinery.tables import Commit, RunInfo, replace_rows

EMBEDDINGS_TABLE = "scored/embeddings"
REJECTS_TABLE = "bronze/rejects"


@dataclass(frozen=True)
class EmbedResult:
    records_in: int
    model: str
    dimension: int
    embeddings: Commit
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        return f"{self.embeddings.rows} vectors of dimension {self.dimension} from {self.model}"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary("embed", self.records_in, self.embeddings.rows, 0, self.rejects.rows, [self.embeddings], seconds)


def embedder(model: str | None, batch_size: int):
    """``make_predict_fn`` for ``predict_batch_udf``: called once per Python worker."""
    def make():
        from udfs.models.embeddings import embed
        from udfs.models.loading import embedding_model

        encoder = embedding_model(model)
        return lambda texts: embed([str(t) for t in texts], encoder, batch_size)
    return make


def run(spark: SparkSession, cfg: Config, run_id: str) -> EmbedResult:
    e = cfg.embed
    docs, usable, version = read_input(spark, cfg.table(e.input), e.input, "embed")
    run_info = RunInfo(run_id, "embed", cfg.section_hash("embed"), {e.input: version})
    encode = predict_batch_udf(embedder(e.model, e.batch_size), return_type=ArrayType(FloatType()),
                               batch_size=e.rows_per_call)
    texts = spread(docs.where(usable).select("doc_id", "source", "text"))
    vectors = texts.select("doc_id", "source", encode("text").alias("embedding"))
    written = replace_rows(vectors, cfg.table(EMBEDDINGS_TABLE), None, run_info, ["source"])
    rejects = replace_rows(rejected_rows(docs.where(~usable), "embed"), cfg.table(REJECTS_TABLE),
                           "stage = 'embed'", run_info, ["stage", "source"])
    table = spark.read.format("delta").option("versionAsOf", written.version).load(written.path)
    first = table.select(F.size("embedding").alias("d")).first()
    result = EmbedResult(docs.count(), e.model or "all-MiniLM-L6-v2 (bundled)", first.d if first else 0, written, rejects)
    reconcile(result.records_in, {"written": written.rows, "rejected": rejects.rows})
    return result


if __name__ == "__main__":  # spark-submit jobs/embed.py --config ...
    from refinery.cli import main

    sys.exit(main(["embed", *sys.argv[1:]]))
