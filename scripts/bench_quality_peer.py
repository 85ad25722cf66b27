"""The peer side of ``bench_quality.py``; runs in its own venv with datatrove installed.

Reads documents (JSON lines with ``text``) and writes, as JSON: per document and per rule,
whether datatrove's filter drops it when that rule is the only one enabled; and the time its four
filters (Gopher quality, Gopher repetition, C4 quality, FineWeb quality, default settings) take
over all documents, best of ``--repeats``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import time
import warnings

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

warnings.filterwarnings("ignore", category=RuntimeWarning)
OFF = float("inf")


def defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def isolated_filters() -> dict[str, object]:
    """One filter per rule, every other rule of the same filter disabled."""
    out: dict[str, object] = {}
    gq = defaults(GopherQualityFilter)
    params = ["min_doc_words", "max_doc_words", "min_avg_word_length", "max_avg_word_length", "max_symbol_word_ratio",
              "max_bullet_lines_ratio", "max_ellipsis_lines_ratio", "max_non_alpha_words_ratio", "min_stop_words"]
    for p in params:
        out[f"gopher_quality.{p}"] = GopherQualityFilter(**{**dict.fromkeys(params), p: gq[p]})
    gr = defaults(GopherRepetitionFilter)
    scalars = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
    off = {**dict.fromkeys(scalars), "top_n_grams": (), "dup_n_grams": ()}
    for p in scalars:
        out[f"gopher_repetition.{p}"] = GopherRepetitionFilter(**{**off, p: gr[p]})
    for n, frac in gr["top_n_grams"]:
        out[f"gopher_repetition.top_{n}_gram"] = GopherRepetitionFilter(**{**off, "top_n_grams": ((n, frac),)})
    for n, frac in gr["dup_n_grams"]:
        out[f"gopher_repetition.dup_{n}_gram"] = GopherRepetitionFilter(**{**off, "dup_n_grams": ((n, frac),)})
    fw = defaults(FineWebQualityFilter)
    disabled = {"line_punct_thr": 0.0, "short_line_thr": OFF, "char_duplicates_ratio": OFF, "new_line_ratio": OFF}
    for p in disabled:
        out[f"fineweb.{p}"] = FineWebQualityFilter(**{**disabled, p: fw[p]})
    out["c4.lorem_ipsum"] = C4QualityFilter(filter_curly_bracket=False, min_num_sentences=-1)
    out["c4.curly_bracket"] = C4QualityFilter(filter_lorem_ipsum=False, min_num_sentences=-1)
    out["c4.too_few_sentences"] = C4QualityFilter(filter_lorem_ipsum=False, filter_curly_bracket=False)
    return out


def dropped(f, text: str) -> bool:
    result = f.filter(Document(text=text, id="0"))  # a fresh document: C4 rewrites the text it keeps
    return isinstance(result, tuple) and not result[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("docs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(args.docs, encoding="utf-8")]
    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    for f in filters:  # warm-up: spaCy loads on first use
        dropped(f, texts[0])
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        for text in texts:
            for f in filters:
                dropped(f, text)
        best = min(best, time.perf_counter() - start)
    decisions = {name: [dropped(f, t) for t in texts] for name, f in isolated_filters().items()}
    print(json.dumps({"seconds": best, "docs": len(texts), "decisions": decisions}))


if __name__ == "__main__":
    main()
