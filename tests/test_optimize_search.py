"""The search machinery of `backtest optimize` (grid, Optuna TPE, min-trades, the process pool, the results
table and report) with the pure, deterministic Evaluate of tests/optimize_fixtures.py standing in for the
backtest runner."""
from __future__ import annotations

import csv
import functools
from datetime import date
from decimal import Decimal

import pytest

from backtest import optimize_report
from backtest.metrics import summarize
from backtest.optimize import (
    Fold,
    Outcome,
    Settings,
    best_point,
    grid_search,
    judge,
    new_study,
    optuna_search,
    ranked,
    table,
    worker_pool,
    write_csv,
)
from backtest.sweep_params import parse_params, point_problems
from core.config import DEFAULT_CONFIG_PATH, load_config
from tests.optimize_fixtures import evaluate

FOLD = Fold(date(2025, 1, 1), date(2025, 1, 31))


@pytest.fixture(scope="module")
def cfg():
    return load_config(DEFAULT_CONFIG_PATH)


@pytest.fixture(scope="module")
def specs(cfg):
    return parse_params(["mac.fast=3:12:3", "mac.slow=10:30:10"], cfg)   # 4 x 3 = 12 points, 2 invalid


def _problems(cfg):
    return functools.partial(point_problems, cfg=cfg)


def test_grid_tries_every_point_in_order_and_skips_invalid_ones(cfg, specs):
    results = grid_search(evaluate, specs, FOLD, Settings("sharpe"), _problems(cfg))
    assert [r.index for r in results] == list(range(12))
    assert [r.point for r in results][:3] == [{"mac.fast": 3, "mac.slow": 10}, {"mac.fast": 3, "mac.slow": 20},
                                             {"mac.fast": 3, "mac.slow": 30}]
    invalid = [r for r in results if r.status == "invalid"]
    assert [r.point for r in invalid] == [{"mac.fast": 12, "mac.slow": 10}]
    assert invalid[0].reason == "mac.slow: 10 is not allowed -- must be greater than fast (12)"
    ok = [r for r in results if r.status == "ok"]
    for r in ok:   # the objective is the evaluation's own figure
        assert r.value == evaluate(r.point, FOLD).summary.sharpe
    best = best_point(results)
    assert best is not None and best.value == max(r.value for r in ok)


def test_min_trades_rejects_and_objectives_read_the_summary(cfg, specs):
    loose = grid_search(evaluate, specs, FOLD, Settings("net"), _problems(cfg))
    counts = sorted(r.trades for r in loose if r.status == "ok")
    cut = counts[len(counts) // 2]
    strict = grid_search(evaluate, specs, FOLD, Settings("net", min_trades=cut), _problems(cfg))
    few = [r for r in strict if r.status == "few_trades"]
    assert few and all(r.trades < cut and r.value is None for r in few)
    assert f"fewer than --min-trades {cut}" in few[0].reason
    assert all(r.value == float(evaluate(r.point, FOLD).summary.net_pnl) for r in strict if r.status == "ok")
    for objective in ("sortino", "calmar", "profit_factor"):
        r = judge(0, {"mac.fast": 3, "mac.slow": 20}, evaluate({"mac.fast": 3, "mac.slow": 20}, FOLD),
                  Settings(objective))
        s = evaluate({"mac.fast": 3, "mac.slow": 20}, FOLD).summary
        want = {"sortino": s.sortino, "calmar": s.calmar, "profit_factor": s.trades.profit_factor}[objective]
        assert (r.value, r.status) == (want, "ok" if want is not None else "undefined")


def test_undefined_objective_rejects_the_point():
    flat = Outcome(summarize([], [(date(2025, 1, 1), Decimal(100))], Decimal(100), risk_free_rate=0.0,
                             session_seconds=60))
    r = judge(0, {"mac.fast": 3}, flat, Settings("sharpe"))
    assert (r.status, r.value, r.reason) == ("undefined", None, "sharpe is undefined")


def test_two_worker_processes_give_the_grid_of_one(cfg, specs):
    one = grid_search(evaluate, specs, FOLD, Settings("sharpe", workers=1), _problems(cfg))
    with worker_pool(2) as pool:
        assert pool is not None
        two = grid_search(evaluate, specs, FOLD, Settings("sharpe", workers=2), _problems(cfg), pool)
    assert two == one


def test_tpe_is_seeded_and_stays_in_the_grid(cfg, specs):
    def run(seed):
        study = new_study(specs, grid_mode=False, seed=seed)
        return optuna_search(evaluate, specs, FOLD, Settings("sharpe"), _problems(cfg), study, trials=8)

    a, b = run(7), run(7)
    assert a == b and len(a) <= 8                       # a repeated point is one result
    allowed = {(p, q) for p in (3, 6, 9, 12) for q in (10, 20, 30)}
    assert all((r.point["mac.fast"], r.point["mac.slow"]) in allowed for r in a)
    for r in a:
        if r.status == "ok":
            assert r.value == evaluate(r.point, FOLD).summary.sharpe


def test_optuna_grid_matches_the_plain_grid(cfg, specs):
    plain = grid_search(evaluate, specs, FOLD, Settings("sharpe"), _problems(cfg))
    study = new_study(specs, grid_mode=True, seed=0)
    via = optuna_search(evaluate, specs, FOLD, Settings("sharpe", workers=1), _problems(cfg), study, trials=None)
    assert via == plain
    assert len(study.trials) == 12                      # no point twice, and the loop stopped by itself


def test_table_csv_and_report(cfg, specs, tmp_path):
    results = grid_search(evaluate, specs, FOLD, Settings("sharpe", min_trades=1), _problems(cfg))
    text = table(results, specs, "sharpe", 3)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "mac.fast", "mac.slow", "sharpe", "trades", "net", "max", "dd"]
    assert len(lines) == 5 and lines[-1].startswith("12 points: 11 ok, rejected 1 invalid")
    path = write_csv(tmp_path / "optimize.csv", results, specs)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 12 and rows[0]["rank"] == "1" and rows[-1]["status"] == "invalid"
    assert [float(r["objective"]) for r in rows[:11]] == sorted((float(r["objective"]) for r in rows[:11]),
                                                                  reverse=True)
    assert ranked(results)[0].point == {k: int(rows[0][k]) for k in ("mac.fast", "mac.slow")}
    page = optimize_report.render("Optimisation", "test", results, specs, "sharpe", 3, (specs[0], specs[1]))
    assert "http" not in page and "<script" not in page
    assert "Parameter heatmap" in page and page.count('<table class="heat">') == 1
    heat = page[page.index('<table class="heat">'):]
    heat = heat[:heat.index("</table>")]
    assert heat.count("<tr>") == 4 and heat.count("<td></td>") == 1      # 3 slow rows + head; the invalid cell


def test_tpe_on_two_processes_repeats_with_the_same_seed(cfg, specs):
    def run():
        study = new_study(specs, grid_mode=False, seed=3)
        with worker_pool(2) as pool:
            return optuna_search(evaluate, specs, FOLD, Settings("net", workers=2), _problems(cfg), study, trials=6,
                                 pool=pool)

    a = run()
    assert a == run() and all(r.status in ("ok", "invalid") for r in a)


def test_heatmap_over_three_parameters_keeps_the_best_of_the_third(cfg):
    specs3 = parse_params(["mac.fast=3,6", "mac.slow=20,30", "mac.atr_multiple=1.0,2.0"], cfg)
    results = grid_search(evaluate, specs3, FOLD, Settings("net"), _problems(cfg))
    html = optimize_report.heatmap_section(results, specs3[0], specs3[1], "net")
    assert "(the best over the other parameters)" in html
    best_3_20 = max(r.value for r in results if r.point["mac.fast"] == 3 and r.point["mac.slow"] == 20)
    assert f">{best_3_20:.2f}</td>" in html
