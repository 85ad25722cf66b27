"""``refinery``: run one stage or the whole pipeline with the same code spark-submit runs.

Exit codes: 0 ok, 2 unusable config or input, 3 a stage's reject rate passed its limit.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Sequence

from refinery.config import ConfigError, load_config
from refinery.session import build_session
from refinery.summary import StageSummary, stage_table
from refinery.tables import new_run_id

PIPELINE = ("ingest", "dedup", "quality")  # what `run` runs: CPU stages, core install
MODEL_STAGES = ("embed", "perplexity")  # need the `ml` extra (torch); run on their own
LATER_STAGES = (*MODEL_STAGES, "select", "export", "shift_report", "self_instruct", "train_reward", "score_reward", "adversarial_filter",
                "active_learning")  # select reads the embed stage's table
EXIT_BAD_INPUT = 2
EXIT_REJECT_RATE = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="refinery", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[*PIPELINE, *LATER_STAGES, "run"],
                        help="a stage, or 'run' for ingest, dedup and quality")
    parser.add_argument("--config", help="YAML config (default: the bundled conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set ingest.max_reject_rate=0.1 (repeatable)")
    parser.add_argument("--run-id", default=None, help="id stamped on every Delta commit (default: generated)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    run_id = args.run_id or new_run_id()
    stages = PIPELINE if args.command == "run" else (args.command,)
    spark = build_session(cfg.spark)
    print(f"refinery run {run_id}: stages {', '.join(stages)}; lake {cfg.lake}")
    summaries: list[StageSummary] = []
    exit_code = 0
    for stage in stages:
        started = time.monotonic()
        try:
            result = run_stage(stage, spark, cfg, run_id)
        except (ConfigError, RuntimeError) as exc:
            print(f"refinery: stage {stage} failed: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        summaries.append(result.summary(time.monotonic() - started))
        print(f"\n{stage}: {result.details()}")
        for problem in result.problems():
            print(f"refinery: stage {stage}: {problem}", file=sys.stderr)
            exit_code = EXIT_REJECT_RATE
    print("\n" + stage_table(summaries))
    return exit_code


# A stage whose job module has another name: jobs/select.py would shadow Python's own ``select``
# module for every ``spark-submit jobs/<stage>.py`` (the script's folder comes first on sys.path).
JOB_MODULES = {"select": "selection"}


def run_stage(stage: str, spark, cfg, run_id: str):
    """Run one stage's job; jobs import lazily so a stage's heavy dependencies load only when used."""
    return importlib.import_module(f"jobs.{JOB_MODULES.get(stage, stage)}").run(spark, cfg, run_id)


if __name__ == "__main__":
    sys.exit(main())
