"""Hashed word features with MLlib, shared by the TF-IDF / bag-of-words neighbours and domain
relevance: lower-cased words (and word bigrams), HashingTF counts, optionally IDF and L2 norm."""
from __future__ import annotations

from pyspark.ml import Pipeline
from pyspark.ml.feature import IDF, HashingTF, NGram, Normalizer, RegexTokenizer, SQLTransformer

OUTPUT = "features"


def word_features(num_features: int, bigrams: bool = False, idf: bool = False, unit: bool = False) -> Pipeline:
    """A pipeline from ``text`` to a sparse ``features`` vector."""
    # (?U): Unicode word characters (Java's \W alone is ASCII-only: Cyrillic or Chinese text would give no words)
    stages = [RegexTokenizer(inputCol="text", outputCol="_words", pattern=r"(?U)\W+", toLowercase=True)]
    words = "_words"
    if bigrams:
        stages += [NGram(n=2, inputCol="_words", outputCol="_bigrams"),
                   SQLTransformer(statement="SELECT *, concat(_words, _bigrams) AS _grams FROM __THIS__")]
        words = "_grams"
    stages.append(HashingTF(inputCol=words, outputCol="_tf", numFeatures=num_features))
    if idf:
        stages.append(IDF(inputCol="_tf", outputCol="_tfidf"))
    if unit:
        stages.append(Normalizer(inputCol=stages[-1].getOutputCol(), outputCol="_unit", p=2.0))
    stages.append(SQLTransformer(statement=f"SELECT *, {stages[-1].getOutputCol()} AS {OUTPUT} FROM __THIS__"))
    return Pipeline(stages=stages)
