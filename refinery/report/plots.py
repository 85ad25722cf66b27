"""The report's figures: matplotlib (Agg, no display) rendered to PNG and inlined as data URIs,
so the page needs no network, no CDN and no JavaScript library."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SMALL = (4.2, 2.6)
WIDE = (8.5, 3.6)


def png(fig) -> str:
    """The figure as a ``data:image/png;base64`` URI (and closed)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def funnel(stages: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=WIDE)
    y = np.arange(len(stages))[::-1]
    ax.barh(y, stages["kept"], color="#2b7bba", label="kept")
    ax.barh(y, stages["dropped"], left=stages["kept"], color="#f0a202", label="dropped")
    ax.barh(y, stages["rejected"], left=stages["kept"] + stages["dropped"], color="#d1495b", label="rejected")
    ax.set_yticks(y, stages["stage"])
    ax.set_xlabel("records")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("records in per stage: kept + dropped + rejected")
    return png(fig)


def source_funnel(sources: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=WIDE)
    width = 0.8 / max(len(sources.columns), 1)
    x = np.arange(len(sources.index))
    for i, step in enumerate(sources.columns):
        ax.bar(x + i * width, sources[step], width, label=f"after {step}")
    ax.set_xticks(x + width * (len(sources.columns) - 1) / 2, sources.index, rotation=30, ha="right")
    ax.set_ylabel("records")
    ax.legend(fontsize=8)
    ax.set_title("records per source after each stage")
    return png(fig)


def reasons(frame: pd.DataFrame, title: str) -> str:
    labels = [f"{t.split('/')[0]}: {r}" for t, r in zip(frame["table"], frame["reason"])]
    fig, ax = plt.subplots(figsize=(WIDE[0], 0.8 + 0.28 * len(frame)))
    y = np.arange(len(frame))[::-1]
    ax.barh(y, frame["records"], color="#f0a202")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("records")
    ax.set_title(title)
    return png(fig)


def signal_histogram(values: pd.Series, kept: pd.Series, signal: str, bounds: tuple[tuple[str, float], ...]) -> str:
    """Kept and dropped documents' values stacked, each threshold a dashed line (min: keep right of it)."""
    fig, ax = plt.subplots(figsize=SMALL)
    finite = values.astype("float64").replace([np.inf, -np.inf], np.nan)
    mask = finite.notna()
    data = [finite[mask & kept].to_numpy(), finite[mask & ~kept].to_numpy()]
    ax.hist(data, bins=40, stacked=True, color=["#2b7bba", "#d1495b"], label=["kept", "dropped"])
    for bound, threshold in bounds:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"{bound} {threshold:g}", (threshold, ax.get_ylim()[1] * 0.9), fontsize=7, ha="left")
    ax.set_title(signal, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    return png(fig)


def perplexity(frame: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=WIDE)
    logs = np.log10(frame["perplexity"].astype("float64").clip(lower=1e-9))
    bins = np.histogram_bin_edges(logs.dropna(), bins=50)
    buckets = frame["bucket"].fillna("(no reference)")
    for name, color in (("head", "#2b7bba"), ("middle", "#f0a202"), ("tail", "#d1495b"), ("(no reference)", "grey")):
        part = logs[buckets == name]
        if len(part):
            ax.hist(part, bins=bins, alpha=0.8, color=color, label=f"{name} ({len(part)})")
    ax.set_xlabel("log10 perplexity")
    ax.set_ylabel("documents")
    ax.legend(fontsize=8)
    ax.set_title("perplexity by reference bucket (head: as clean as the reference)")
    return png(fig)


def cluster_sizes(frame: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=WIDE)
    ax.bar(frame["cluster_size"].astype(str), frame["clusters"], color="#2b7bba")
    ax.set_yscale("log")
    ax.set_xlabel("documents in the duplicate cluster")
    ax.set_ylabel("clusters (log)")
    ax.set_title("duplicate-cluster sizes")
    return png(fig)


def embedding_map(points: pd.DataFrame, top: int = 10) -> str:
    """Colour by the largest groups (one-pass cluster, else source); selected records ringed."""
    fig, ax = plt.subplots(figsize=(7, 5.5))
    largest = points["group"].value_counts().index[:top]
    group = points["group"].where(points["group"].isin(largest), "(other)")
    for name in [*largest, "(other)"]:
        part = points[group == name]
        if len(part):
            ax.scatter(part["x"], part["y"], s=8, alpha=0.7, label=str(name)[:24])
    chosen = points[points["selected"]]
    if len(chosen):
        ax.scatter(chosen["x"], chosen["y"], s=40, facecolors="none", edgecolors="black", linewidths=1.2,
                   label=f"selected ({len(chosen)})")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set_title(f"embeddings, first two principal components ({len(points)} sampled)")
    return png(fig)


def selected_vs_pool(frame: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=WIDE)
    x = np.arange(len(frame))
    pool = frame["pool"] / max(frame["pool"].sum(), 1)
    chosen = frame["selected"] / max(frame["selected"].sum(), 1)
    ax.bar(x - 0.2, pool, 0.4, label="pool", color="#9db4c0")
    ax.bar(x + 0.2, chosen, 0.4, label="selected", color="#2b7bba")
    ax.set_xticks(x, frame["source"], rotation=30, ha="right")
    ax.set_ylabel("share")
    ax.legend(fontsize=8)
    ax.set_title("share per source: selected subset vs pool")
    return png(fig)
