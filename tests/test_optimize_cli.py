"""`python driver.py backtest optimize` as a user runs it: real processes, files written, exit codes. The
backtest is the pure Evaluate of tests/optimize_fixtures.py (--evaluate) until the runner lands."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVAL = "tests.optimize_fixtures:evaluate"


def optimize(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "backtest", "optimize", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_grid_on_two_workers_writes_table_csv_and_report(tmp_path):
    out1, out2 = tmp_path / "one", tmp_path / "two"
    base = ["--from", "2025-01-01", "--to", "2025-01-31", "--param", "mac.fast=3:12:3", "--param",
            "mac.slow=10:30:10", "--grid", "--evaluate", EVAL, "--top", "3"]
    p1 = optimize(*base, "--workers", "1", "--out", str(out1))
    p2 = optimize(*base, "--workers", "2", "--out", str(out2))
    assert p1.returncode == 0, p1.stderr
    assert p2.returncode == 0, p2.stderr
    assert "12 points: 11 ok, rejected 1 invalid" in p2.stdout and "with 2 worker(s)" in p2.stdout
    assert "best: mac.fast=" in p2.stdout
    assert (out1 / "optimize.csv").read_text() == (out2 / "optimize.csv").read_text()
    rows = list(csv.DictReader((out2 / "optimize.csv").open()))
    assert len(rows) == 12
    page = (out2 / "report.html").read_text()
    assert "Parameter heatmap" in page and "http" not in page


def test_walk_forward_writes_folds_and_stitched_equity(tmp_path):
    p = optimize("--from", "2025-01-01", "--to", "2025-04-30", "--param", "mac.fast=3:9:3", "--param",
                 "mac.slow=20,40", "--grid", "--objective", "net", "--walk-forward", "3", "--evaluate", EVAL,
                 "--workers", "1", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("fold ") == 3 and "out-of-sample, stitched: return" in p.stdout
    folds = list(csv.DictReader((tmp_path / "walk_forward.csv").open()))
    assert [f["fold"] for f in folds] == ["1", "2", "3"]
    assert all(f["out_from"] > f["in_to"] for f in folds)
    page = (tmp_path / "report.html").read_text()
    assert "Walk-forward folds" in page and 'id="chart-oos-equity"' in page


@pytest.mark.parametrize("args, says", [
    (["--param", "mac.fats=5:20:1"], "--param 'mac.fats=5:20:1' is not allowed -- mac (ma_crossover) has no "
                                     "parameter 'fats'"),
    (["--param", "mac.fast=5:20:1", "--objective", "alpha"], "--objective 'alpha' is not allowed -- use one of "
                                                             "sharpe, sortino, calmar, profit_factor, net"),
    (["--param", "mac.fast=0:5:5", "--grid"], "mac.fast = 0 is valid in no combination"),
    (["--param", "mac.fast=5", "--storage", "postgresql://x/y"], "--storage and --study go together"),
    (["--param", "mac.fast=5", "--storage", "nonsense:secret@x", "--study", "s"], "--storage is not allowed -- not a "
                                                                                "database URL"),
    (["--param", "mac.fast=5", "--heatmap", "mac.fast,mac.slow"], "--heatmap 'mac.fast,mac.slow' is not allowed"),
    (["--param", "mac.fast=5", "--walk-forward", "500"], "--walk-forward: 500 folds are not allowed"),
])
def test_bad_flags_exit_2_naming_them(args, says):
    p = optimize("--from", "2025-01-01", "--to", "2025-01-31", "--evaluate", EVAL, *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert says in p.stderr and "Traceback" not in p.stderr and "secret" not in p.stderr
