"""The benchmark suite runs (quick sizes) and writes results a reader can trust.

`python -m benchmarks --quick --only latency condor_q` against a real master
and workers on loopback, into a temporary results directory (the committed
benchmarks/results and BENCHMARKS.md are left alone).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.e2e  # a missing work_queue_worker fails it: no skip


def _check_figure(fig: dict) -> None:
    assert fig["name"]
    if fig.get("unsupported"):
        return
    assert fig["n"] >= 1 and len(fig["samples"]) == fig["n"]
    for key in ("median", "min", "max", "q1", "q3"):
        assert isinstance(fig[key], float) and math.isfinite(fig[key]), (fig["name"], key)
    assert fig["min"] <= fig["median"] <= fig["max"]
    assert fig["min"] > 0, fig["name"]
    if fig["unit"] == "s":
        assert fig["max"] < 120, fig["name"]
        assert fig["ratio"] > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("bench-results")
    before = sorted(os.listdir(os.path.join(REPO, "benchmarks", "results")))
    env = dict(os.environ, PYTHONPATH=REPO + (":" + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "latency",
                           "condor_q", "--results-dir", str(results)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert sorted(os.listdir(os.path.join(REPO, "benchmarks", "results"))) == before
    return proc, str(results)


def test_quick_suite_exits_zero(quick_run):
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_latency_json(quick_run):
    _, results = quick_run
    with open(os.path.join(results, "latency.json")) as handle:
        doc = json.load(handle)
    assert doc["scenario"] == "latency" and doc["quick"] is True
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["python"]
    assert "--only latency" in doc["command"]
    run = doc["runs"]["awq"]
    assert "error" not in run, run.get("error")
    assert run["yardstick"]["n"] >= 3 and 0 < run["yardstick"]["median"] < 5
    names = [fig["name"] for fig in run["figures"]]
    assert any("direct" in n and "output" in n for n in names)
    assert any("foreman" in n and "output" in n for n in names)
    for fig in run["figures"]:
        _check_figure(fig)
    for fig in run["figures"]:
        if "output" in fig["name"]:
            assert fig["target"] and fig["met"] in (True, False)


def test_condor_q_json(quick_run):
    _, results = quick_run
    with open(os.path.join(results, "condor_q.json")) as handle:
        doc = json.load(handle)
    run = doc["runs"]["awq"]
    assert "error" not in run, run.get("error")
    figures = run["figures"]
    assert len(figures) == 8  # every client form in reference/clients.md
    for fig in figures:
        _check_figure(fig)
        assert fig["output_correct"] is True, (fig["name"], fig.get("output_sample"))
        assert fig["yardstick_s"] > 0 and fig["command"]
        assert fig["ratio"] == pytest.approx(fig["median"] / fig["yardstick_s"])


def test_report_regenerated(quick_run):
    _, results = quick_run
    with open(os.path.join(results, "BENCHMARKS.md")) as handle:
        text = handle.read()
    assert "## Machine" in text and "## Issue 8 targets" in text
    assert "python -m benchmarks --quick --only condor_q" in text
    assert "python3 -c pass" in text
