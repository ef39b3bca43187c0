"""The --param grammar of `backtest optimize`, checked against the strategies' own Params (pure logic)."""
from __future__ import annotations

import pytest

from backtest.sweep_params import (
    ParamError,
    apply_point,
    grid,
    grid_size,
    parse_param,
    parse_params,
    point_problems,
)
from core.config import DEFAULT_CONFIG_PATH, load_config


@pytest.fixture(scope="module")
def cfg():
    return load_config(DEFAULT_CONFIG_PATH)   # the shipped config: strategies orb and mac


def test_range_is_inclusive_and_typed(cfg):
    s = parse_param("mac.fast=5:20:5", cfg)
    assert (s.key, s.values, s.kind, s.is_range) == ("mac.fast", (5, 10, 15, 20), "int", True)
    assert parse_param("mac.slow=15:29:5", cfg).values == (15, 20, 25)      # stop off the step: not passed
    f = parse_param("mac.atr_multiple=1.0:1.3:0.1", cfg)
    assert f.values == (1.0, 1.1, 1.2, 1.3) and all(isinstance(v, float) for v in f.values)  # exact, no 1.2000001
    assert parse_param("mac.fast=5,9,13", cfg).values == (5, 9, 13)
    assert parse_param("mac.exit_at=15:00,15:05", cfg).values == ("15:00", "15:05")   # a str field: a list


@pytest.mark.parametrize("flag, says", [
    ("mac.fast", "expected STRATEGY.PARAM=START:STOP:STEP"),
    ("fast=5:20:1", "expected STRATEGY.PARAM=START:STOP:STEP"),
    ("nope.fast=5:20:1", "no strategy 'nope' in config.yaml; expected one of orb, mac"),
    ("mac.fats=5:20:1", "has no parameter 'fats'; allowed are candle_seconds, fast, slow"),
    ("mac.fast=5:20", "a range is START:STOP:STEP"),
    ("mac.fast=5:20:0", "STEP must be positive"),
    ("mac.fast=20:5:1", "STOP must not be below START"),
    ("mac.fast=5.5:20:1", "whole numbers"),
    ("mac.fast=5,x", "'x' is not a number"),
    ("mac.fast=5,5", "listed twice"),
])
def test_bad_flag_names_flag_value_and_what_is_allowed(cfg, flag, says):
    with pytest.raises(ParamError) as e:
        parse_param(flag, cfg)
    assert f"--param {flag!r} is not allowed -- " in str(e.value)
    assert says in str(e.value)


def test_a_value_no_combination_allows_is_refused_with_the_strategys_reason(cfg):
    with pytest.raises(ParamError) as e:
        parse_params(["mac.fast=0:10:5", "mac.slow=15:30:5"], cfg)
    assert "mac.fast = 0 is valid in no combination: mac.fast: 0 is not allowed -- must be at least 1" in str(e.value)
    with pytest.raises(ParamError, match=r"mac.exit_at = '25:00' is valid in no combination: mac.exit_at: "):
        parse_params(["mac.exit_at=15:00,25:00"], cfg)
    with pytest.raises(ParamError, match=r"mac.slow = 5 is valid in no combination: mac.slow: 5 is not allowed -- "
                                         r"must be greater than fast \(9\)"):
        parse_params(["mac.slow=5,30"], cfg)
    with pytest.raises(ParamError, match=r"--param 'mac.slow=20,25' is not allowed -- mac.slow = 20 is valid in no "
                                         r"combination: mac.slow: 20 is not allowed -- must be greater than fast"):
        parse_params(["mac.fast=30,40", "mac.slow=20,25"], cfg)
    with pytest.raises(ParamError, match="already swept"):
        parse_params(["mac.fast=5,6", "mac.fast=7"], cfg)


def test_constraint_across_parameters_skips_points_not_the_run(cfg):
    specs = parse_params(["mac.fast=5:25:10", "mac.slow=15:25:10"], cfg)   # fast 5,15,25 x slow 15,25
    assert grid_size(specs) == 6
    points = list(grid(specs))
    assert points[0] == {"mac.fast": 5, "mac.slow": 15} and points[1] == {"mac.fast": 5, "mac.slow": 25}
    invalid = [p for p in points if point_problems(p, cfg)]
    assert invalid == [{"mac.fast": 15, "mac.slow": 15}, {"mac.fast": 25, "mac.slow": 15},
                       {"mac.fast": 25, "mac.slow": 25}]
    assert point_problems(invalid[0], cfg) == ["mac.slow: 15 is not allowed -- must be greater than fast (15)"]


def test_apply_point_changes_only_the_named_params(cfg):
    new = apply_point(cfg, {"mac.fast": 5, "orb.range_minutes": 30})
    assert new.strategies["mac"].params["fast"] == 5 and new.strategies["mac"].params["slow"] == 21
    assert new.strategies["orb"].params["range_minutes"] == 30
    assert cfg.strategies["mac"].params["fast"] == 9        # the loaded config is untouched
