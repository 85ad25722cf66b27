"""Every stage the CLI offers has a job file spark-submit can run: one that exists, has ``run``, and
does not shadow a standard-library module (spark-submit puts ``jobs/`` first on sys.path, so a
``jobs/select.py`` once broke every job's ``import socket``)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from refinery.stages import JOB_MODULES, STAGES, STANDALONE

JOBS = Path(__file__).resolve().parent.parent / "jobs"


def test_no_job_shadows_the_standard_library():
    names = {p.stem for p in JOBS.glob("*.py")} - {"__init__"}
    assert not names & set(sys.stdlib_module_names)


@pytest.mark.parametrize("stage", [*STAGES, *STANDALONE, "pipeline"])
def test_each_stage_has_a_submittable_job(stage):
    module = JOB_MODULES.get(stage, stage)
    source = (JOBS / f"{module}.py").read_text()
    command = "run" if stage == "pipeline" else stage
    assert 'if __name__ == "__main__"' in source and f'main(["{command}", *sys.argv[1:]])' in source
    assert callable(importlib.import_module(f"jobs.{module}").run)
