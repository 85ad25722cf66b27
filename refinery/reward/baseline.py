"""The cheap baseline that runs fully distributed: hashed word + bigram TF-IDF and MLlib
LogisticRegression on the response text (the prompt is the same on both sides of a pair)."""
from __future__ import annotations

import numpy as np
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import vector_to_array
from pyspark.sql import SparkSession

from refinery.reward.examples import Examples
from refinery.selection.features import word_features


def fit_predict(spark: SparkSession, train: list[tuple[str, int]], test: list[str], features: int) -> np.ndarray:
    """P(label 1) of each ``test`` text from a model fitted on (text, label) pairs."""
    frame = spark.createDataFrame(train, "text string, label int").repartition(spark.sparkContext.defaultParallelism)
    model = Pipeline(stages=[word_features(features, bigrams=True, idf=True),
                             LogisticRegression(featuresCol="features", labelCol="label", maxIter=100,
                                                regParam=0.01, elasticNetParam=0.0)]).fit(frame)
    scored = model.transform(spark.createDataFrame([(i, t) for i, t in enumerate(test)], "i long, text string"))
    rows = scored.select("i", vector_to_array("probability")[1].alias("p")).orderBy("i").collect()
    return np.array([r.p for r in rows], np.float64)


def pairwise_accuracy(spark: SparkSession, train: Examples, test: Examples, features: int) -> float:
    """Chosen answers as positives, rejected as negatives; a held-out pair is right when its chosen
    answer gets the higher probability."""
    p = fit_predict(spark, [(r, 1) for r in train.responses] + [(r, 0) for r in train.others],
                    test.responses + test.others, features)
    n = len(test)
    return float(np.mean(p[:n] > p[n:])) if n else float("nan")


def pointwise_probabilities(spark: SparkSession, train: Examples, test: Examples, features: int) -> np.ndarray:
    """P(good) of each held-out example; here the text is prompt and response together."""
    return fit_predict(spark, list(zip(joined(train), train.labels)), joined(test), features)


def joined(examples: Examples) -> list[str]:
    return [f"{p}\n\n{r}" for p, r in zip(examples.prompts, examples.responses)]
