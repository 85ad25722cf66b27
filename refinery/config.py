"""The one config schema: YAML in ``conf/``, then ``REFINERY_*`` env vars, then ``--set`` flags.

Validation is strict (unknown keys and wrong types are errors), and every error names the dotted
key, because a typo in a week-long cluster job's config should fail before the cluster starts.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from refinery.stages import STAGES, STANDALONE
from udfs.ingest.formats import FORMATS, resolve_fields
from udfs.quality.pii import KINDS as PII_KINDS
from udfs.quality.rules import BY_NAME as QUALITY_RULES
from udfs.reward.negatives import KINDS as NEGATIVE_KINDS

ENV_PREFIX = "REFINERY_"
DEFAULT_CONFIG = "local.yaml"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the offending key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkSection(Section):
    master: str | None = Field(None, description="local[N] for local mode; null leaves it to spark-submit")
    app_name: str = "refinery"
    shuffle_partitions: int | None = Field(None, gt=0)
    jars_cache: str = Field("~/.cache/refinery/ivy", description="Ivy cache holding the Delta JARs in local mode")
    conf: dict[str, str] = Field(default_factory=dict, description="any other spark.* settings")

    @field_validator("conf", mode="before")
    @classmethod
    def _as_spark_strings(cls, conf: Any) -> Any:
        """Spark settings are strings; YAML's ``true`` / ``8`` become Spark's ``true`` / ``8``."""
        if not isinstance(conf, dict):
            return conf
        return {k: (str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float)) else v)
                for k, v in conf.items()}


class SourceSection(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str = Field(description="file, directory or glob; local path or s3a:// gs:// hdfs:// URI")
    format: Literal[tuple(FORMATS)]  # type: ignore[valid-type]
    fields: dict[str, str | list[str]] = Field(default_factory=dict)
    lang: str | None = None
    license: str | None = None

    @model_validator(mode="after")
    def _fields_fit_format(self) -> "SourceSection":
        try:
            resolve_fields(self.format, self.fields)
        except ValueError as exc:
            raise ValueError(f"fields: {exc}") from None
        return self


class IngestSection(Section):
    sources: list[SourceSection] = Field(min_length=1)
    max_record_bytes: int = Field(1_000_000, gt=0)
    max_reject_rate: float = Field(0.05, ge=0, le=1)
    max_unreadable_files: int = Field(0, ge=0)
    snippet_chars: int = Field(200, gt=0)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceSection]) -> list[SourceSection]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return sources


class ExactDedupSection(Section):
    """Exact dedup: texts equal after these normalizations are duplicates."""

    enabled: bool = True
    nfkc: bool = True
    lowercase: bool = True
    whitespace: bool = Field(True, description="collapse whitespace runs to one space, trim the ends")
    punctuation: bool = Field(False, description="ignore punctuation and symbols")


class NearDedupSection(Section):
    """MinHash-LSH near dedup; ``bands``/``rows`` default to datasketch's optimum for ``threshold``."""

    enabled: bool = True
    unit: Literal["word", "char"] = "word"
    ngram: int = Field(5, gt=0)
    num_perm: int = Field(128, ge=2, le=1024)
    seed: int = 1
    hash: Literal["xxh32", "sha1"] = Field("xxh32", description="shingle hash; sha1 is datasketch's default")
    threshold: float = Field(0.8, gt=0, lt=1)
    bands: int | None = Field(None, gt=0)
    rows: int | None = Field(None, gt=0)
    # Recall-leaning weights (datasketch's MinHashLSH default is 0.5 / 0.5): verification removes
    # the extra false positives, and nothing can restore a missed pair. 128 perms -> 17 bands x 7
    # rows: a pair at Jaccard 0.8 becomes a candidate with p = 0.98, at 0.85 with p = 0.9986.
    false_positive_weight: float = Field(0.02, ge=0)
    false_negative_weight: float = Field(0.98, ge=0)
    verify: bool = Field(True, description="exact Jaccard of candidate pairs; drop those under threshold")
    pairwise_bucket_limit: int = Field(32, ge=2, description="buckets up to this size give all pairs, larger a star")

    @model_validator(mode="after")
    def _banding(self) -> "NearDedupSection":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (derived from threshold)")
        if self.bands and self.rows and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} > num_perm {self.num_perm}")
        return self


class SurvivorSection(Section):
    """Which document of a duplicate cluster is kept; ties go to the lowest doc_id."""

    policy: Literal["lowest_id", "longest", "score"] = "lowest_id"
    score_column: str | None = Field(None, description="input column; highest wins (policy: score)")

    @model_validator(mode="after")
    def _score_column(self) -> "SurvivorSection":
        if (self.policy == "score") != (self.score_column is not None):
            raise ValueError("score_column is required with policy 'score' and only used by it")
        return self


class DedupSection(Section):
    input: str = Field("bronze/docs", description="lake table to deduplicate")
    within: list[str] = Field(["kind"], description="only records equal in these columns (nulls included) are compared")
    exact: ExactDedupSection = Field(default_factory=ExactDedupSection)
    near: NearDedupSection = Field(default_factory=NearDedupSection)
    survivor: SurvivorSection = Field(default_factory=SurvivorSection)
    checkpoint_dir: str | None = Field(None, description="reliable checkpoints here; null: executor-local ones")
    max_iterations: int = Field(50, gt=0, description="connected-components rounds before giving up")


class QualityThresholds(Section):
    thresholds: dict[str, float | None] = Field(default_factory=dict, description="rule -> threshold (null: off)")

    @field_validator("thresholds")
    @classmethod
    def _known_rules(cls, thresholds: dict[str, float | None]) -> dict[str, float | None]:
        unknown = sorted(set(thresholds) - set(QUALITY_RULES))
        if unknown:
            raise ValueError(f"unknown quality rule(s) {unknown}; known: {sorted(QUALITY_RULES)}")
        return thresholds


class QualitySourceSection(QualityThresholds):
    """Per-source overrides: thresholds replace the stage's one by one; ``languages``, when given
    (null included: any language), replaces the stage's list."""

    languages: list[str] | None = None


class PiiSection(Section):
    enabled: bool = True
    kinds: list[Literal[PII_KINDS]] = Field(list(PII_KINDS), description="what is replaced by a placeholder")
    phone_region: str = Field("US", description="region for phone numbers written without +country code")


class QualitySection(QualityThresholds):
    input: str = Field("dedup/kept", description="lake table to score and filter")
    kinds: list[str] = Field(["pretrain"], description="record kinds the rules filter (signals are computed for all)")
    languages: list[str] | None = Field(None, description="keep only these detected languages (ISO 639-1); null: any")
    lang_max_chars: int | None = Field(None, gt=0, description="language ID reads at most this many characters")
    sources: dict[str, QualitySourceSection] = Field(default_factory=dict)
    pii: PiiSection = Field(default_factory=PiiSection)


class EmbedSection(Section):
    input: str = Field("quality/kept", description="lake table whose text is embedded")
    model: str | None = Field(None, description="sentence-transformers folder or hub id; null: bundled all-MiniLM-L6-v2")
    batch_size: int = Field(64, gt=0, description="texts per forward pass")
    rows_per_call: int = Field(1024, gt=0, description="rows Spark hands the model at once (per Arrow batch)")


class PerplexitySection(Section):
    input: str = Field("quality/kept", description="lake table whose text is scored")
    model: str | None = Field(None, description="causal LM folder or hub id; null: bundled SmolLM2-135M")
    cache_dir: str = Field("~/.cache/refinery/models", description="where the bundled GGUF is converted once")
    max_length: int = Field(1024, gt=1, description="tokens per window (at most the model's context)")
    stride: int = Field(512, gt=0, description="tokens between window starts for longer documents")
    token_budget: int = Field(16384, gt=0, description="padded tokens per forward pass")
    rows_per_call: int = Field(256, gt=0, description="rows Spark hands the model at once")
    reference: str | None = Field(None, description="clean reference texts (one per line, or JSON lines with text)")
    percentiles: tuple[float, float] = Field((33.3, 66.7), description="reference percentiles: head | middle | tail")

    @model_validator(mode="after")
    def _window(self) -> "PerplexitySection":
        if self.stride > self.max_length:
            raise ValueError(f"stride {self.stride} must not exceed max_length {self.max_length}")
        return self


class NeighborsSection(Section):
    """Top-k most similar records per record."""

    enabled: bool = False
    backend: Literal["tfidf", "bow", "embedding"] = Field("tfidf", description="tfidf / bow: MLlib over words; embedding: the embed stage's vectors")
    k: int = Field(10, gt=0)
    num_features: int = Field(1 << 18, gt=0, description="hashed word features (tfidf, bow)")
    blocks: int = Field(4, gt=0, description="records split into this many blocks; blocks x blocks products, each copy shuffled once")


class SemDedupSection(Section):
    """SemDeDup: KMeans on embeddings, then inside each cluster a record whose cosine to a kept one
    is at least 1 - eps is dropped."""

    enabled: bool = False
    clusters: int = Field(100, gt=0, description="KMeans k (at most the number of records)")
    eps: float = Field(0.05, gt=0, lt=1)
    keep: Literal["outlying", "central"] = Field("outlying", description="which records are visited (kept) first: farthest from the centroid (SemDeDup's default) or nearest")
    seed: int = 1
    max_iterations: int = Field(20, gt=0, description="KMeans iterations")


class OnePassSection(Section):
    """Leader clustering: a record joins its most similar leader if the cosine reaches threshold."""

    enabled: bool = False
    threshold: float = Field(0.8, gt=-1, le=1)
    partitions: int = Field(4, gt=0, description="first pass runs per partition (records hashed by doc_id), then the leaders are merged")


class KCenterSection(Section):
    """K-Center-Greedy coreset of ``k`` records (Euclidean distance on the unit embeddings)."""

    enabled: bool = False
    k: int = Field(1000, gt=0)
    mode: Literal["auto", "exact", "two_round"] = Field("auto", description="auto: exact up to exact_max_rows, else two_round")
    exact_max_rows: int = Field(200_000, gt=0, description="exact greedy collects the vectors to the driver up to this many")
    partitions: int = Field(8, gt=0, description="two_round: first-round partitions")


class BalanceSection(Section):
    """At most ``cap`` records per group, picked in a seeded random order."""

    enabled: bool = False
    by: str = Field("source", description="an input column, meta.<key> (JSON field of meta), or 'cluster' (one-pass clusters)")
    cap: int = Field(1000, gt=0)
    seed: int = 1


class DomainSection(Section):
    """Relevance to a target-domain sample, and a subset of ``size`` records."""

    enabled: bool = False
    target: str | None = Field(None, description="target-domain texts (one per line, or JSON lines with text)")
    method: Literal["dsir", "classifier"] = Field("dsir", description="dsir: importance resampling on hashed n-grams; classifier: TF-IDF logistic regression")
    size: int = Field(1000, gt=0, description="records selected")
    num_features: int = Field(10_000, gt=0, description="hashed unigram+bigram buckets (DSIR uses 10k)")
    seed: int = 1

    @model_validator(mode="after")
    def _target(self) -> "DomainSection":
        if self.enabled and not self.target:
            raise ValueError("target (a target-domain sample) is required when domain selection is enabled")
        return self


class SelectSection(Section):
    input: str = Field("quality/kept", description="lake table of candidate records (text)")
    embeddings: str = Field("scored/embeddings", description="lake table of their vectors (doc_id, embedding)")
    kinds: list[str] | None = Field(["sft"], description="record kinds selected among; null: all")
    neighbors: NeighborsSection = Field(default_factory=NeighborsSection)
    semdedup: SemDedupSection = Field(default_factory=SemDedupSection)
    onepass: OnePassSection = Field(default_factory=OnePassSection)
    kcenter: KCenterSection = Field(default_factory=KCenterSection)
    balance: BalanceSection = Field(default_factory=BalanceSection)
    domain: DomainSection = Field(default_factory=DomainSection)

    @model_validator(mode="after")
    def _balance_clusters(self) -> "SelectSection":
        if self.balance.enabled and self.balance.by == "cluster" and not self.onepass.enabled:
            raise ValueError("balance.by 'cluster' balances one-pass clusters: enable onepass too")
        return self


class ExportSection(Section):
    """Curated records -> SFT / reward-model / RL files (Parquet and JSON lines) with a dataset card."""

    input: str = Field("quality/kept", description="lake table of curated records")
    only: str | None = Field(None, description="a lake table (e.g. select/kcenter): export only its doc_ids")
    out: str = Field("exports", description="directory the export folder is written under (local or object store)")
    name: str = Field("refinery", pattern=r"^[A-Za-z0-9_.-]+$", description="export folder name under out")
    file_formats: list[Literal["parquet", "jsonl"]] = Field(["parquet", "jsonl"], min_length=1)
    sft: list[Literal["messages", "prompt_completion"]] = Field(["messages", "prompt_completion"])
    reward: bool = Field(True, description="prompt / chosen / rejected from preference records")
    rl: bool = Field(True, description="prompts only, from the SFT records")
    system_prompt: str | None = Field(None, description="prepended to conversations that have no system turn")
    chat_template: str | None = Field(None, description="tokenizer folder / hub id whose chat template renders prompt strings")
    tokenizer: str | None = Field(None, description="token counts per split; null: bundled SmolLM2's, 'none': no counts")
    splits: dict[str, float] = Field({"train": 0.98, "validation": 0.01, "test": 0.01})
    rl_max_prompt_tokens: int = Field(1024, gt=0, description="longer RL prompts are left out (needs a tokenizer)")

    @field_validator("splits")
    @classmethod
    def _fractions(cls, splits: dict[str, float]) -> dict[str, float]:
        if not splits or any(f < 0 for f in splits.values()) or abs(sum(splits.values()) - 1) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {splits}")
        return splits


class ShiftSection(Section):
    """How far a fine-tuning set is from a reference sample (the base model's pretraining text)."""

    finetune: str = Field("quality/kept", description="lake table of the fine-tuning records")
    kinds: list[str] | None = Field(["sft"], description="record kinds of the fine-tuning table; null: all")
    reference: str | None = Field(None, description="a lake table, or a text file (one document per line or JSON lines with text)")
    sample: int = Field(500, gt=1, description="records drawn from each side (seeded) for the embedding statistics")
    ppl_sample: int = Field(50, ge=0, description="records per side scored by the base model (0: no perplexity)")
    max_length: int = Field(512, gt=1, description="tokens per perplexity window")
    permutations: int = Field(500, gt=0, description="MMD permutation test")
    seed: int = 1
    out: str = Field("reports", description="directory the report (markdown + JSON) is written to")


class BackendSection(Section):
    """Where self-instruct's completions come from: a local model on the driver, or an endpoint."""

    kind: Literal["local", "openai"] = "local"
    model: str | None = Field(None, description="local: folder or hub id (null: bundled SmolLM2-135M-Instruct); openai: the served model name")
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://vllm:8000 (vLLM, TGI, llama.cpp, hosted)")
    chat: bool = Field(False, description="use /v1/chat/completions (prompt as one user turn) instead of /v1/completions")
    api_key_env: str | None = Field(None, description="name of the env var holding the API key (keys stay out of configs)")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0, description="retries of timeouts, connection errors, 408/409/429 and 5xx")
    concurrency: int = Field(8, gt=0, description="requests in flight")
    requests_per_minute: float | None = Field(None, gt=0, description="client-side rate limit; null: none")
    batch_size: int = Field(8, gt=0, description="local: prompts per generate() call")

    @model_validator(mode="after")
    def _endpoint(self) -> "BackendSection":
        if self.kind == "openai" and not (self.base_url and self.model):
            raise ValueError("kind 'openai' needs base_url and model")
        return self


class SamplingSection(Section):
    max_new_tokens: int = Field(gt=0)
    temperature: float = Field(ge=0)
    top_p: float = Field(1.0, gt=0, le=1)


class SelfInstructSection(Section):
    """The self-instruct loop (Wang et al. 2023): seed tasks -> new instructions, filtered, with instances."""

    seeds: str | None = Field(None, description="seed tasks, JSON lines of id / instruction / instances / is_classification")
    language: Literal["en", "zh"] = Field("en", description="prompt wording and the rule filters' defaults")
    pool: list[str] = Field(default_factory=list, description="more instructions new ones must differ from: lake tables (prompt column) or JSON / JSON-lines files (instruction field)")
    out: str = Field("self_instruct", description="lake prefix of the tables: tasks, records, dropped, rounds")
    target: int = Field(100, gt=0, description="stop when this many tasks are kept (over all runs)")
    max_rounds: int = Field(20, gt=0, description="rounds per run at most")
    prompts_per_round: int = Field(8, gt=0)
    human_examples: int = Field(6, ge=0, description="seed instructions per prompt")
    machine_examples: int = Field(2, ge=0, description="machine-made instructions per prompt (seeds fill in while there are fewer)")
    classification_shots: int = Field(12, gt=0)
    instance_shots: int = Field(3, gt=0)
    max_instance_chars: int = Field(4000, gt=0)
    seed: int = 1
    journal: str | None = Field(None, description="driver-local file of finished requests; null: under ~/.cache/refinery/journal")
    backend: BackendSection = Field(default_factory=BackendSection)
    instructions: SamplingSection = SamplingSection(max_new_tokens=512, temperature=0.7, top_p=0.5)
    classification: SamplingSection = SamplingSection(max_new_tokens=3, temperature=0.0)
    instances: SamplingSection = SamplingSection(max_new_tokens=300, temperature=0.0)
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="ROUGE-L F at or above which an instruction is a near duplicate")
    lsh_threshold: float = Field(0.4, gt=0, lt=1, description="word-set Jaccard the LSH candidate search is tuned for")
    min_words: int | None = Field(None, gt=0, description="null: the language's default (4)")
    max_words: int | None = Field(None, gt=0, description="null: the language's default (150)")
    blacklist: list[str] | None = Field(None, description="null: the language's default keywords")
    banned_prefixes: list[str] | None = Field(None, description="null: the language's default")


class PointwiseSection(Section):
    labels: Literal["auto", "meta"] = Field("auto", description="auto: the input is trusted, negatives are made; meta: labels from the records' meta")
    label_field: str = Field("label", description="meta: the JSON field holding a boolean or 0/1 label (KTO's 'label')")
    negatives: list[Literal[tuple(NEGATIVE_KINDS)]] = Field(list(NEGATIVE_KINDS), min_length=1)  # type: ignore[valid-type]
    other_language: str | None = Field(None, description="texts in another language for wrong_language negatives: a lake table or a text / JSON-lines file")


class RewardSection(Section):
    """Reward model (pairwise) / quality classifier (pointwise): training on the driver, scoring on the executors."""

    input: str = Field("quality/kept", description="lake table to train on: preference records (pairwise) or SFT records (pointwise)")
    objective: Literal["pairwise", "pointwise"] = "pairwise"
    backbone: str | None = Field(None, description="encoder folder or hub id (null: bundled MiniLM); e.g. microsoft/deberta-v3-base")
    allow_download: bool = Field(False, description="let a hub id download; off: only local folders, a clear error otherwise")
    out: str = Field("models/reward", description="model folders <out>/pairwise and <out>/pointwise (driver file system)")
    epochs: int = Field(2, gt=0)
    learning_rate: float = Field(3e-5, gt=0)
    batch_size: int = Field(16, gt=0, description="pairs (pairwise) or examples (pointwise) per step")
    max_length: int = Field(256, gt=8, description="tokens per (prompt, response); the prompt loses its start first")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 1
    heldout: float = Field(0.2, gt=0, lt=1, description="share of prompts (by hash) held out for the metrics")
    max_train: int = Field(200_000, gt=0, description="training examples collected to the driver at most (seeded sample)")
    baseline_features: int = Field(1 << 18, gt=0, description="hashed TF-IDF features of the logistic-regression baseline")
    pointwise: PointwiseSection = Field(default_factory=PointwiseSection)
    score_input: str = Field("quality/kept", description="lake table the score stage scores")
    pairwise_model: str | None = Field(None, description="trained folder (null: <out>/pairwise when it exists)")
    pointwise_model: str | None = Field(None, description="trained folder (null: <out>/pointwise when it exists)")
    score_batch_size: int = Field(64, gt=0, description="texts per forward pass when scoring")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where scoring runs: auto takes the executor's GPU when it has one")


class AdversarialSection(Section):
    """Adversarial semi-supervised filtering: a trusted set against a large unlabelled pool (PU learning)."""

    pool: str = Field("quality/kept", description="lake table of the unlabelled pool")
    kinds: list[str] | None = Field(None, description="record kinds of the pool to filter; null: all")
    trusted: str | None = Field(None, description="the trusted high-quality set: a lake table or a text file (one document per line, or JSON lines with text)")
    rounds: int = Field(3, gt=0, description="discriminator rounds; round 0 is trusted vs the whole pool")
    folds: int = Field(3, gt=1, description="cross-fitting: each record is scored by a model fitted without its fold")
    drop_ratio: float = Field(0.1, gt=0, lt=1, description="a record is dropped when its P(trusted) is below this times the median of the records scored in that round")
    max_drop_fraction: float = Field(0.3, gt=0, le=1, description="at most this share of the remaining pool is dropped per round (the lowest scores)")
    features: int = Field(1 << 18, gt=0, description="hashed word + bigram TF-IDF features")
    reg_param: float = Field(0.01, ge=0, description="L2 strength of the logistic regression")
    out: str = Field("models/adversarial", description="each round's fitted model is saved under <out>/<run_id>/round=<k>")


class ActiveSection(Section):
    """Active learning: pick what to annotate next (uncertain AND good enough), import labels, retrain."""

    input: str = Field("quality/kept", description="pool of records to annotate (sft records)")
    scores: str = Field("scored/reward", description="table with the quality column (score_reward's)")
    quality: Literal["quality_prob", "reward_score"] = "quality_prob"
    uncertainty: Literal["entropy", "margin", "perplexity"] = Field("entropy", description="entropy / margin of quality_prob, or the perplexity stage's PPL")
    embeddings: str | None = Field("scored/embeddings", description="vectors for the K-Center-Greedy spread; null: the most uncertain")
    min_uncertainty: float = Field(0.5, ge=0, description="uncertainty bar (a quantile or an absolute value, per uncertainty_cut)")
    uncertainty_cut: Literal["quantile", "absolute"] = "quantile"
    min_quality: float = Field(0.2, description="quality bar (a quantile or an absolute value, per quality_cut)")
    quality_cut: Literal["quantile", "absolute"] = "quantile"
    batch_size: int = Field(100, gt=0, description="records per annotation batch")
    max_candidates: int = Field(20_000, gt=0, description="accepted candidates spread on the driver at most (the most uncertain)")
    out: str = Field("annotation", description="batch files: <out>/round=<r>/batch.jsonl, label_studio_tasks.json, label_config.xml")
    labels: str | None = Field(None, description="JSON lines of {doc_id, label} to import this run (label: good/bad, true/false, 1/0)")
    heldout: float = Field(0.2, gt=0, lt=1, description="labelled prompts (by hash) kept for the per-round metric")
    oracle: str | None = Field(None, description="simulation: the meta field holding known labels answers each batch at once")


class ReportSection(Section):
    """The run report (refinery report, or the last stage of a run)."""

    out: str = Field("reports", description="folder of report-<run_id>.html and report.html (the latest); local path")
    title: str = "Refinery run report"
    signal_sample: int = Field(20000, gt=0, description="documents sampled for the signal and perplexity histograms")
    embedding_sample: int = Field(3000, gt=2, description="vectors sampled for the 2-D embedding map")
    selected: str | None = Field("select/kcenter", description="selection table shown against the pool (when present)")
    seed: int = 1


class PipelineSection(Section):
    """What ``refinery run`` runs, and the care its Delta tables get after each stage."""

    stages: list[str] = Field(["ingest", "dedup", "quality"], min_length=1,
                              description="stages in run order; a stage must come after the ones whose tables it reads")
    optimize: bool = Field(False, description="OPTIMIZE (compact) every table a stage wrote, after the stage")
    zorder: dict[str, list[str]] = Field({}, description="table -> columns to Z-order by when optimizing (the columns later stages filter on)")
    vacuum_retention_hours: float | None = Field(None, ge=0, description="VACUUM written tables, keeping versions this recent readable; null: never")
    progress_seconds: float = Field(10, ge=0, description="seconds between progress lines while a stage runs (0: none)")
    stage_retries: int = Field(1, ge=0, description="re-runs of a stage after a failure that can pass (a lost executor); not config or storage errors")
    incremental: bool = Field(True, description="ingest only new or changed files, deduplicate new documents against the stored MinHash bands and score only changed rows, when the last run's state is current; false: every run recomputes and no state tables are kept")

    @field_validator("stages")
    @classmethod
    def _known(cls, stages: list[str]) -> list[str]:
        for stage in stages:
            if stage in STANDALONE:
                raise ValueError(f"{stage} runs on its own (refinery {stage}): each run of it is a new round")
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; one of {sorted(STAGES)}")
        if len(set(stages)) != len(stages):
            raise ValueError(f"a stage is listed twice: {stages}")
        return stages


class Config(Section):
    lake: str = Field(description="root of every Delta table; local path or object-store URI")
    spark: SparkSection = Field(default_factory=SparkSection)
    ingest: IngestSection
    dedup: DedupSection = Field(default_factory=DedupSection)
    quality: QualitySection = Field(default_factory=QualitySection)
    embed: EmbedSection = Field(default_factory=EmbedSection)
    perplexity: PerplexitySection = Field(default_factory=PerplexitySection)
    select: SelectSection = Field(default_factory=SelectSection)
    export: ExportSection = Field(default_factory=ExportSection)
    shift: ShiftSection = Field(default_factory=ShiftSection)
    self_instruct: SelfInstructSection = Field(default_factory=SelfInstructSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    adversarial: AdversarialSection = Field(default_factory=AdversarialSection)
    active: ActiveSection = Field(default_factory=ActiveSection)
    report: ReportSection = Field(default_factory=ReportSection)
    pipeline: PipelineSection = Field(default_factory=PipelineSection)

    def table(self, name: str) -> str:
        """Location of a lake table such as ``bronze/docs``."""
        return f"{self.lake.rstrip('/')}/{name}"

    def section_hash(self, section: str) -> str:
        """Stable hash of one stage's settings, recorded in its Delta commits."""
        payload = json.dumps(getattr(self, section).model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read a YAML config (the bundled ``conf/local.yaml`` by default), apply env and CLI overrides."""
    raw = _read_yaml(path)
    env = os.environ if environ is None else environ
    origins: dict[str, str] = {}
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            dotted = key[len(ENV_PREFIX):].lower().replace("__", ".")
            if dotted.startswith("spark.conf."):
                raise ConfigError(f"env {key}: Spark settings are case-sensitive and dotted, which env names "
                                  "cannot carry; use --set spark.conf.<key>=<value> or the YAML")
            origins[dotted] = f"env {key}"
            _assign(raw, dotted, value, origins[dotted])
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        origins[key.strip()] = f"--set {key.strip()}"
        _assign(raw, key.strip(), value, origins[key.strip()])
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins)) from None


def _read_yaml(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("conf").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
        origin = f"conf/{DEFAULT_CONFIG} (bundled)"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        origin = str(path)
    try:
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{origin} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _assign(raw: dict[str, Any], dotted: str, value: str, origin: str) -> None:
    """Set ``a.b.0.c`` in the raw mapping. Numbers, booleans, lists and maps are read as YAML
    (``1``, ``true``, ``[a, b]``); anything YAML would read as a string, or cannot read, is kept
    exactly as typed (``/data/run #2``, ``*.jsonl``), unless quoted (``'no'``).

    Under ``spark.conf`` the rest of the key is one Spark setting (``spark.conf.spark.executor.memory``)
    and the value is passed to Spark as typed.
    """
    steps = dotted.split(".")
    if steps[:2] == ["spark", "conf"] and len(steps) > 2:
        steps = steps[:2] + [".".join(steps[2:])]
        parsed: Any = value
    else:
        parsed = _override_value(value)
    node: Any = raw
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(node, list):
            if not LIST_INDEX.fullmatch(step) or int(step) >= len(node):
                raise ConfigError(f"{origin}: '{'.'.join(steps[:i + 1])}' is not an index of a list of {len(node)}")
            key: Any = int(step)
        elif isinstance(node, dict):
            key = step
            if not last and node.get(key) is None:
                node[key] = {}
        else:
            raise ConfigError(f"{origin}: '{'.'.join(steps[:i])}' is not a section")
        if last:
            node[key] = parsed
        else:
            node = node[key]


DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
LIST_INDEX = re.compile(r"[0-9]+")
UNION_TAG = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\])$")


def _override_value(value: str) -> Any:
    """An override's value: YAML where it means a number, boolean, list or map, else the text."""
    if not value.strip():
        return None
    try:
        parsed = yaml.safe_load(value)
    except (yaml.YAMLError, ValueError, RecursionError):  # not YAML, or YAML Python cannot hold
        return value
    quoted = len(value) > 1 and value[0] == value[-1] and value[0] in "'\""
    if isinstance(parsed, str) and not quoted:
        return value
    # YAML 1.1 reads 010 as 8 and 1:30 as 90; only plain decimals are numbers here.
    if isinstance(parsed, int) and not isinstance(parsed, bool) and not DECIMAL_INT.fullmatch(value.strip()):
        return value
    return parsed


def _describe(exc: ValidationError, origins: Mapping[str, str]) -> str:
    """One line per error naming the dotted key (pydantic's union-member tags left out) and, for
    keys set by an override, where it came from."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not UNION_TAG.match(str(p))) or "(top level)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        origin = next((f" (from {o})" for k, o in origins.items()
                       if k == key or k.startswith(key + ".") or key.startswith(k + ".")), "")
        lines.append(f"config key '{key}'{origin}: {message}")
    return "invalid config:\n  " + "\n  ".join(lines)
