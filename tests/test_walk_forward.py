"""Walk-forward folds, their optimisation and the stitched out-of-sample equity (pure logic, with the pure
Evaluate of tests/optimize_fixtures.py)."""
from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

import pytest

from backtest.optimize import Fold, Settings, best_point, grid_search
from backtest.sweep_params import parse_params, point_problems
from backtest.walk_forward import WalkForwardError, run, split, stitch
from core.config import DEFAULT_CONFIG_PATH, load_config
from tests.optimize_fixtures import CAPITAL, evaluate, weekdays

DAYS = weekdays(date(2025, 1, 1), date(2025, 4, 30))     # 86 weekdays


def test_rolling_split_tiles_the_range_after_one_in_sample_window():
    folds = split(DAYS, 4, 0.75, anchored=False)
    oos_len = int(len(DAYS) / (4 + 3))                   # 12: in-sample 3x out-of-sample
    first = len(DAYS) - 4 * oos_len
    assert [(i.index, o.index, i.sample, o.sample) for i, o in folds] == [(k, k, "in", "out") for k in range(4)]
    assert folds[0][0].start == DAYS[0] and folds[-1][1].end == DAYS[-1]
    for k, (ins, oos) in enumerate(folds):
        assert oos.start == DAYS[first + k * oos_len] and oos.end == DAYS[first + (k + 1) * oos_len - 1]
        assert ins.end == DAYS[DAYS.index(oos.start) - 1]                   # in-sample ends the day before
        assert DAYS.index(ins.end) - DAYS.index(ins.start) + 1 == first     # the same length every fold
    assert folds[0][0].read_from is None                                    # the range's first day: no lead-in
    for ins, _ in folds[1:]:                                                # a week before, not traded
        assert ins.read_from == max(DAYS[0], date.fromordinal(ins.start.toordinal() - 7))
    assert all(oos.read_from == date.fromordinal(oos.start.toordinal() - 7) for _, oos in folds)
    for (_, a), (_, b) in zip(folds, folds[1:], strict=False):
        assert DAYS.index(b.start) == DAYS.index(a.end) + 1                 # out-of-sample windows abut


def test_anchored_split_grows_from_the_first_day():
    folds = split(DAYS, 3, 0.5, anchored=True)
    assert all(ins.start == DAYS[0] for ins, _ in folds)
    assert [DAYS.index(ins.end) for ins, _ in folds] == [DAYS.index(o.start) - 1 for _, o in folds]
    assert folds[-1][1].end == DAYS[-1]


@pytest.mark.parametrize("k, ratio, says", [
    (0, 0.75, "expected at least 1 fold"), (3, 1.0, "a fraction between 0 and 1"),
    (84, 0.75, "each out-of-sample window would be empty"),
])
def test_bad_split_is_refused(k, ratio, says):
    with pytest.raises(WalkForwardError, match=says):
        split(DAYS, k, ratio, anchored=False)


def test_each_fold_optimises_in_sample_and_trades_its_best_out_of_sample():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    specs = parse_params(["mac.fast=3:9:3", "mac.slow=20,40"], cfg)
    problems = functools.partial(point_problems, cfg=cfg)
    settings = Settings("net")

    def search(fold: Fold):
        return grid_search(evaluate, specs, fold, settings, problems)

    folds = run(evaluate, search, split(DAYS, 3, 0.75, anchored=False), settings)
    assert len(folds) == 3
    for f in folds:
        assert f.best == best_point(search(f.in_sample))            # the in-sample winner ...
        out = evaluate(f.best.point, f.out_sample)                  # ... traded on days it never saw
        assert f.oos is not None and f.oos.figures["net"] == float(out.summary.net_pnl)
        assert f.oos_equity == out.equity and f.oos_capital == CAPITAL
    st = stitch(folds)
    assert [d for d, _ in st.equity] == [d for f in folds for d, _ in f.oos_equity]
    # compounded: fold 2's equity starts where fold 1 ended
    end1 = folds[0].oos_equity[-1][1]
    first2 = folds[1].oos_equity[0][1]
    assert st.equity[len(folds[0].oos_equity)][1] == first2 * end1 / CAPITAL
    growth = Decimal(1)
    for f in folds:
        growth *= f.oos_equity[-1][1] / CAPITAL
    assert st.total_return == pytest.approx(float(growth - 1))


def test_a_fold_where_no_point_passes_is_not_traded():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    specs = parse_params(["mac.fast=3", "mac.slow=20"], cfg)
    problems = functools.partial(point_problems, cfg=cfg)
    settings = Settings("net", min_trades=10**6)
    folds = run(evaluate, lambda f: grid_search(evaluate, specs, f, settings, problems),
                split(DAYS, 2, 0.75, anchored=False), settings)
    assert all(f.best is None and f.oos is None and f.oos_equity == () for f in folds)
    st = stitch(folds)
    assert st.equity == () and st.total_return == 0.0
