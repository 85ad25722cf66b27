"""A plain-language reading of the shift statistics: how many fine-tuning examples to expect to need.

The bands are heuristics, not measurements of your task. They rest on two published points:
LIMA (Zhou et al. 2023) aligned a 65B model's style with 1,000 curated examples, i.e. when the
fine-tuning data is close to what the base model already models, hundreds to a thousand examples
go far; instruction-tuning for a new domain or skill (e.g. Alpaca's 52k, domain SFT work) uses tens
of thousands. The classifier AUC cut-offs (0.7, 0.9) are the conventional "acceptable" and
"excellent" discrimination levels used for ROC curves (Hosmer & Lemeshow); the perplexity ratio
says the same thing from the base model's side.
"""
from __future__ import annotations

BANDS = (
    (0.7, "small", "the fine-tuning set is hard to tell from the reference: hundreds of examples may do"),
    (0.9, "moderate", "a classifier separates the sets fairly well: expect to need a few thousand examples"),
    (1.01, "large", "the sets are clearly different: expect to need thousands to tens of thousands of examples"),
)


def shift_band(auc: float) -> tuple[str, str]:
    """(band name, sentence) for a classifier two-sample AUC."""
    for cut, name, sentence in BANDS:
        if auc < cut:
            return name, sentence
    return BANDS[-1][1], BANDS[-1][2]


def reading(auc: float, mmd_p: float, ppl_ratio: float | None) -> str:
    name, sentence = shift_band(auc)
    parts = [f"Shift: {name} (classifier AUC {auc:.2f}; {sentence})."]
    parts.append("MMD finds the difference significant (p = %.3g)." % mmd_p if mmd_p < 0.05
                 else "MMD does not find a significant difference (p = %.3g)." % mmd_p)
    if ppl_ratio is not None:
        parts.append(f"The base model finds the fine-tuning set {ppl_ratio:.2f}x as perplexing as the reference"
                     + (" (it already models text like it)." if ppl_ratio <= 1.2 else "."))
    parts.append("The bands are heuristics (LIMA's ~1k examples for style alignment; conventional AUC cut-offs "
                 "0.7 / 0.9), not a measurement of your task: validate with a small fine-tuning run.")
    return " ".join(parts)
