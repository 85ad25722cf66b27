"""``refinery``: run one stage or the whole pipeline with the same code spark-submit runs.

Exit codes: 0 ok, 2 unusable config or input, 3 a stage's reject rate passed its limit.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from refinery.config import ConfigError, load_config
from refinery.dag import PlanError
from refinery.session import build_session
from refinery.stages import STAGES, STANDALONE, run_stage
from refinery.summary import stage_table
from refinery.tables import new_run_id

EXIT_BAD_INPUT = 2
EXIT_REJECT_RATE = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="refinery", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[*STAGES, *STANDALONE, "run", "history"],
                        help="a stage; 'run' for the stages in pipeline.stages; 'history' for every recorded "
                             "stage run and the table versions it wrote")
    parser.add_argument("--config", help="YAML config (default: the bundled conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set ingest.max_reject_rate=0.1 (repeatable)")
    parser.add_argument("--run-id", default=None, help="id stamped on every Delta commit (default: generated)")
    parser.add_argument("--from", dest="start", metavar="STAGE", help="run: re-run this stage and the ones after it")
    parser.add_argument("--only", action="append", default=[], metavar="STAGE",
                        help="run: re-run just this stage (repeatable)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if (args.start or args.only) and args.command != "run":
        print("refinery: --from and --only go with 'run'", file=sys.stderr)
        return EXIT_BAD_INPUT
    spark = build_session(cfg.spark)
    from jobs import pipeline

    if args.command == "history":
        print(pipeline.history_table(spark, cfg))
        return 0
    run_id = args.run_id or new_run_id()
    print(f"refinery run {run_id}: {args.command}; lake {cfg.lake}")
    try:
        if args.command in STANDALONE:
            started = time.monotonic()
            result = run_stage(args.command, spark, cfg, run_id)
            summary = result.summary(time.monotonic() - started)
            print(f"\n{args.command}: {result.details()}\n\n" + stage_table([summary]))
            problems = {args.command: result.problems()}
        else:
            only = [args.command] if args.command in STAGES else args.only
            outcome = pipeline.run(spark, cfg, run_id, args.start, only)
            print("\n" + stage_table(outcome.summaries))
            problems = outcome.problems
    except (ConfigError, PlanError, RuntimeError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for stage, messages in problems.items():
        for problem in messages:
            print(f"refinery: stage {stage}: {problem}", file=sys.stderr)
    return EXIT_REJECT_RATE if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
