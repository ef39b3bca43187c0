"""Beyond one machine: two `driver.py backtest optimize --storage postgresql://... --study NAME` processes
share one Optuna study on a real PostgreSQL server and together give the local run's grid, point for point.
The backtest is the pure Evaluate of tests/optimize_fixtures.py until the runner lands."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from backtest.optimize import new_study, study_results
from backtest.sweep_params import parse_params
from core.config import DEFAULT_CONFIG_PATH, load_config

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--from", "2025-01-01", "--to", "2025-01-31", "--param", "mac.fast=2:11:1", "--param", "mac.slow=12:40:7",
         "--grid", "--evaluate", "tests.optimize_fixtures:evaluate_slow", "--workers", "1"]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "driver.py"), "backtest", "optimize", *FLAGS, *args]


def _finish(p: subprocess.Popen[str], deadline: float) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
    return p.returncode, out, err


def test_two_hosts_sharing_a_postgresql_study_give_the_local_grid(pg_url, tmp_path):
    local = subprocess.run(_cmd("--out", str(tmp_path / "local")), cwd=ROOT, capture_output=True, text=True,
                           timeout=180)
    assert local.returncode == 0, local.stderr
    url = pg_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    hosts = [subprocess.Popen(_cmd("--storage", url, "--study", "sweep1", "--out", str(tmp_path / f"host{i}")),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2)]
    deadline = time.monotonic() + 180
    try:
        done = [_finish(p, deadline) for p in hosts]
    finally:
        for p in hosts:
            if p.poll() is None:
                p.kill()
                p.wait()
    for code, _, err in done:
        assert code == 0, err
    want = (tmp_path / "local" / "optimize.csv").read_text()
    assert len(want.splitlines()) == 1 + 10 * 5
    for i in (1, 2):   # each host waited for the other's last points, so both report the whole grid
        assert (tmp_path / f"host{i}" / "optimize.csv").read_text() == want

    cfg = load_config(DEFAULT_CONFIG_PATH)
    specs = parse_params(FLAGS[5:8:2], cfg)
    study = new_study(specs, grid_mode=True, seed=0, storage=url, study_name="sweep1")
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and "status" in t.user_attrs]
    assert len(trials) >= 50 and len(study_results(study, specs)) == 50
    ran_by = {t.user_attrs["host"] for t in trials}
    assert len(ran_by) == 2, f"one host ran every point: {ran_by}"


def test_a_host_with_other_flags_cannot_join_the_study(pg_url, tmp_path):
    url = pg_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    cfg = load_config(DEFAULT_CONFIG_PATH)
    specs = parse_params(["mac.fast=2:3:1"], cfg)
    new_study(specs, grid_mode=True, seed=0, storage=url, study_name="s", meta={"params": ["mac.fast=2:3:1"]})
    p = subprocess.run(_cmd("--storage", url, "--study", "s", "--out", str(tmp_path)), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--study 's' is not allowed -- that study sweeps" in p.stderr


@pytest.fixture(autouse=True)
def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
