"""Quality heuristics vs datatrove on the same real documents, one run: per-rule agreement and
throughput per core.

Documents: every web file in ``../shared/data/web`` (C4, Dolma CC, Wikipedia). datatrove is
installed only for this benchmark, in its own venv (``bench/.venv-datatrove``, created on first
run from PyPI), and runs in a subprocess (``bench_quality_peer.py``) over the same JSON lines.

Agreement: for each rule, the share of documents on which Refinery's decision (signal vs published
threshold) equals datatrove's (its filter with only that rule enabled). Throughput: documents per
second in one process (one core) for the same work, datatrove's Gopher quality + Gopher repetition
+ C4 + FineWeb filters vs Refinery's signals for the same rules; Refinery is also timed with its
language ID and with PII scrubbing, which the peer run does not do. Writes ``bench/results/quality.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.summary import render_table  # noqa: E402
from udfs.quality.batches import document_signals, signal_table  # noqa: E402
from udfs.quality.langid import identify  # noqa: E402
from udfs.quality.pii import PiiScrubber  # noqa: E402
from tests.test_quality_rules import AT_AND_PAST  # noqa: E402
from udfs.quality import words  # noqa: E402
from udfs.quality.rules import BY_NAME  # noqa: E402

WEB = ROOT.parent / "shared" / "data" / "web"
PEER_VENV = ROOT / "bench" / ".venv-datatrove"
PEER_PACKAGES = ["datatrove==0.10.1", "spacy>=3.7,<4", "regex"]
# datatrove's rule (filter.parameter) -> Refinery's rule(s); a peer rule covering two of ours
# (one parameter for both '#' and ellipsis) drops when either does.
MAPPING = {
    "gopher_quality.min_doc_words": ["gopher_min_words"],
    "gopher_quality.max_doc_words": ["gopher_max_words"],
    "gopher_quality.min_avg_word_length": ["gopher_min_mean_word_length"],
    "gopher_quality.max_avg_word_length": ["gopher_max_mean_word_length"],
    "gopher_quality.max_symbol_word_ratio": ["gopher_max_hash_ratio", "gopher_max_ellipsis_ratio"],
    "gopher_quality.max_bullet_lines_ratio": ["gopher_max_bullet_lines"],
    "gopher_quality.max_ellipsis_lines_ratio": ["gopher_max_ellipsis_lines"],
    "gopher_quality.max_non_alpha_words_ratio": ["gopher_min_alpha_words"],
    "gopher_quality.min_stop_words": ["gopher_min_stop_words"],
    "gopher_repetition.dup_para_frac": ["gopher_max_dup_para_frac"],
    "gopher_repetition.dup_para_char_frac": ["gopher_max_dup_para_char_frac"],
    "gopher_repetition.dup_line_frac": ["gopher_max_dup_line_frac"],
    "gopher_repetition.dup_line_char_frac": ["gopher_max_dup_line_char_frac"],
    **{f"gopher_repetition.top_{n}_gram": [f"gopher_max_top_{n}gram"] for n in (2, 3, 4)},
    **{f"gopher_repetition.dup_{n}_gram": [f"gopher_max_dup_{n}gram"] for n in range(5, 11)},
    "c4.lorem_ipsum": ["c4_lorem_ipsum"],
    "c4.curly_bracket": ["c4_curly_bracket"],
    "c4.too_few_sentences": ["c4_min_sentences"],
    "fineweb.line_punct_thr": ["fineweb_min_line_punct"],
    "fineweb.short_line_thr": ["fineweb_max_short_lines"],
    "fineweb.char_duplicates_ratio": ["fineweb_max_dup_line_chars"],
    "fineweb.new_line_ratio": ["fineweb_max_list_ratio"],
}


def documents() -> list[str]:
    texts: list[str] = []
    for path in sorted(WEB.glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for path in sorted(WEB.glob("*.txt")):
        texts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return python


def run_peer(texts: list[str], repeats: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([str(peer_python()), str(ROOT / "scripts" / "bench_quality_peer.py"), f.name,
                          "--repeats", str(repeats)], check=True, capture_output=True, text=True)
    Path(f.name).unlink()
    return json.loads(out.stdout)


def compare(texts: list[str], langs: list[str | None], theirs: dict[str, list[bool]]) -> list[dict]:
    """Per datatrove rule: how many documents each side drops, and on how many they disagree."""
    signals = [document_signals(t, lang) for t, lang in zip(texts, langs)]
    rows = []
    for peer_rule, ours in MAPPING.items():
        peer = np.array(theirs[peer_rule])
        mine = np.zeros(len(texts), bool)
        for name in ours:
            rule = BY_NAME[name]
            values = np.array([np.nan if s[rule.signal] is None else s[rule.signal] for s in signals], float)
            mine |= rule.fails(values, rule.default)
        rows.append({"rule": "+".join(ours), "datatrove": peer_rule, "dropped_refinery": int(mine.sum()),
                     "dropped_datatrove": int(peer.sum()), "disagree": int((mine != peer).sum()),
                     "agreement": float((mine == peer).mean())})
    return rows


def best_seconds(fn, repeats: int) -> float:
    """Best of ``repeats`` after a warm-up (spaCy, fastText and the character tables load once per
    worker). spaCy's vocabulary is rebuilt before each timed run, so no run profits from having
    seen the same documents before (datatrove's tokenizer forgets each document too)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        words.nlp.cache_clear()
        words.nlp()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not WEB.is_dir():
        sys.exit(f"bench_quality needs the real documents in {WEB}")
    texts = documents()
    array = pa.array(texts)
    langs = identify(array)[0].to_pylist()

    peer = run_peer(texts, args.repeats)
    agreement = compare(texts, langs, peer["decisions"])
    edges = [t for _, at, past, _ in AT_AND_PAST for t in (at, past)]
    edge_agreement = compare(edges, ["en"] * len(edges), run_peer(edges, 1)["decisions"])

    heuristics = best_seconds(lambda: [document_signals(t, lang) for t, lang in zip(texts, langs)], args.repeats)
    with_langid = best_seconds(lambda: signal_table(array), args.repeats)
    scrubber = PiiScrubber()
    pii = best_seconds(lambda: scrubber.scrub(array), args.repeats)
    n = len(texts)
    speed = [
        {"contender": "datatrove: Gopher quality + repetition + C4 + FineWeb filters", "seconds": peer["seconds"]},
        {"contender": "refinery: signals for the same rules", "seconds": heuristics},
        {"contender": "refinery: + fastText language ID (the stage's signals pass)", "seconds": with_langid},
        {"contender": "refinery: PII scrubbing (kept records)", "seconds": pii},
    ]
    for row in speed:
        row["docs_per_s_per_core"] = n / row["seconds"]
        row["vs_datatrove"] = None if "PII" in row["contender"] else peer["seconds"] / row["seconds"]

    headers = ["rule", "datatrove", "dropped (refinery)", "dropped (datatrove)", "disagree", "agreement"]
    for title, rows in ((f"{n} real documents ({sum(map(len, texts)) / 1e6:.1f} MB) from {WEB}", agreement),
                        (f"{len(edges)} hand-made documents on and one step past each threshold (tests)", edge_agreement)):
        print(f"\n{title}\n" + render_table(headers, [[a["rule"], a["datatrove"], a["dropped_refinery"],
                                                        a["dropped_datatrove"], a["disagree"], f"{a['agreement']:.4f}"]
                                                       for a in rows]))
    print("\n" + render_table(["contender", "seconds", "docs/s/core", "x datatrove"],
                              [[r["contender"], f"{r['seconds']:.2f}", round(r["docs_per_s_per_core"]),
                                "" if r["vs_datatrove"] is None else f"{r['vs_datatrove']:.2f}"] for r in speed]))
    out = ROOT / "bench" / "results" / "quality.json"
    out.write_text(json.dumps({"docs": n, "bytes": sum(len(t.encode()) for t in texts), "peer": PEER_PACKAGES,
                               "agreement": agreement, "edge_documents": len(edges), "edge_agreement": edge_agreement,
                               "speed": speed}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
