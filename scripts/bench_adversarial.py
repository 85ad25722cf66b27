"""Adversarial filter on real web text: C4 documents (../shared, 300) mixed with planted junk
(shuffled words, boilerplate, keyword spam; 30 each), Wikipedia (30 articles) as the trusted set.
Precision and recall of junk removal after each round, per junk kind, with the job's own code on a
temporary lake. Writes ``bench/results/adversarial.json``."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from junk import planted_junk  # noqa: E402
from refinery.summary import render_table  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import jobs.adversarial_filter as job
    from refinery.config import load_config
    from refinery.session import build_session
    from udfs.schema import RECORD_SCHEMA

    c4 = [json.loads(line)["text"] for line in (DATA / "web" / "c4_300.jsonl").read_text().splitlines()]
    junk = planted_junk(c4, args.per_kind)
    rows = ([{"doc_id": f"c4-{i}", "kind": "pretrain", "text": t, "source": "c4"} for i, t in enumerate(c4)]
            + [{"doc_id": f"junk:{k}:{i}", "kind": "pretrain", "text": t, "source": "junk"} for i, (k, t) in enumerate(junk)])
    with tempfile.TemporaryDirectory() as lake:
        cfg = load_config(overrides=[f"lake={lake}", "adversarial.pool=pool", f"adversarial.rounds={args.rounds}",
                                     f"adversarial.trusted={DATA / 'web' / 'wikipedia_30.txt'}",
                                     f"adversarial.out={lake}/models"], environ={})
        spark = build_session(cfg.spark)
        spark.sparkContext.setLogLevel("ERROR")
        spark.createDataFrame(pa.Table.from_pylist(rows, RECORD_SCHEMA)).write.format("delta").save(cfg.table("pool"))
        started = time.perf_counter()
        result = job.run(spark, cfg, "bench")
        seconds = time.perf_counter() - started
        dropped = [(r.doc_id, r.round) for r in spark.read.format("delta").load(cfg.table("adversarial/dropped")).collect()]
    kinds = sorted({k for k, _ in junk})
    table, out = [], []
    for k in range(len(result.rounds)):
        ids = [d for d, r in dropped if r <= k]
        hits = [d for d in ids if d.startswith("junk:")]
        row = {"after_round": k, "dropped": len(ids), "precision": len(hits) / len(ids) if ids else float("nan"),
               "recall": len(hits) / len(junk),
               "recall_by_kind": {kind: sum(d.split(":")[1] == kind for d in hits) / args.per_kind for kind in kinds}}
        out.append(row)
        table.append([k, len(ids), f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      *(f"{row['recall_by_kind'][kind]:.2f}" for kind in kinds)])
    print(f"pool: {len(c4)} C4 + {len(junk)} planted junk; trusted: 30 Wikipedia articles; {seconds:.0f} s")
    print(render_table(["after round", "dropped", "precision", "recall", *(f"recall {k}" for k in kinds)], table))
    path = ROOT / "bench" / "results" / "adversarial.json"
    path.write_text(json.dumps({"c4": len(c4), "junk": len(junk), "seconds": seconds, "rounds": result.rounds,
                                "after_round": out}, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
