"""The options block of an index symbol: what it accepts, its defaults, and problems naming key, value and what is
allowed (core/config.py's style)."""
from __future__ import annotations

import copy
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import ConfigError, parse_config
from options.spec import ExpiryChoice, Filters, OptionsSpec, PremiumLevel, Scoring, Weights, parse_options

KEY = "symbols[0].options"


def parsed(raw: Any) -> OptionsSpec:
    problems: list[str] = []
    spec = parse_options(raw, KEY, problems)
    assert problems == []
    return spec


def problems_of(raw: Any) -> list[str]:
    problems: list[str] = []
    parse_options(raw, KEY, problems)
    return problems


def test_the_issues_example_and_the_defaults():
    entry = yaml.safe_load('- {symbol: NIFTY, fyers: "NSE:NIFTY50-INDEX", exchange: NSE_INDEX, strategy: orb, '
                           'instrument: options, options: {expiry: nearest_weekly, offset: ATM, lots: 1}}')[0]
    assert parsed(entry["options"]) == OptionsSpec() == parsed(None) == parsed({})
    assert OptionsSpec() == OptionsSpec(ExpiryChoice.NEAREST_WEEKLY, None, "ATM", None, Filters(), 1, None, None,
                                        None)


def test_a_full_block_written_in_yaml():
    raw = yaml.safe_load("""
        expiry: monthly
        roll_after: 14:30          # unquoted: YAML 1.1 reads 870 (sexagesimal)
        offset: score
        scoring: {weights: {distance: 3, delta: 2}, max_strikes_from_atm: 2}
        filters: {min_volume: 100, min_oi: 1000, max_spread_pct: 2.5}
        lots: premium_risk
        max_lots: 4
        stop: "30%"
        target: 40
    """)
    assert raw["roll_after"] == 870
    assert parsed(raw) == OptionsSpec(
        expiry=ExpiryChoice.MONTHLY, roll_after=dtime(14, 30), offset=None,
        scoring=Scoring(Weights(3.0, 2.0, 0.0, 0.0, 0.0), 2), filters=Filters(100, 1000, 2.5), lots=None,
        max_lots=4, stop=PremiumLevel(30.0, True), target=PremiumLevel(40.0, False))


def test_offsets_and_scoring():
    assert parsed({"offset": "itm2"}).offset == "ITM2"
    assert parsed({"offset": "OTM50"}).offset == "OTM50"
    scored = parsed({"scoring": {}})                       # scoring alone means offset: score, the seed's weights
    assert (scored.offset, scored.scoring) == (None, Scoring(Weights(0.30, 0.20, 0.15, 0.25, 0.10), 3))
    assert parsed({"offset": "score"}).scoring == Scoring()


@pytest.mark.parametrize(("raw", "problem"), [
    ("ATM", f"{KEY}: 'ATM' is not allowed -- expected a mapping of expiry, roll_after, offset, scoring, filters, "
            "lots, max_lots, stop, target, check_every_s"),
    ({"strike": "ATM"}, f"{KEY}.strike: unknown key -- allowed keys are expiry, roll_after, offset, scoring, "
                        "filters, lots, max_lots, stop, target, check_every_s"),
    ({"check_every_s": 0}, f"{KEY}.check_every_s: 0 is not allowed -- expected whole seconds from 1 to 300 between "
                           "two reads of a held option's premium"),
    ({"expiry": "weekly"}, f"{KEY}.expiry: 'weekly' is not allowed -- expected one of nearest_weekly, next_weekly, "
                           "monthly"),
    ({"roll_after": "16:00"}, f"{KEY}.roll_after: '16:00' is not allowed -- expected a time HH:MM from 09:15 to "
                              "15:30 (IST), quoted"),
    ({"roll_after": "2pm"}, f"{KEY}.roll_after: '2pm' is not allowed -- expected a time HH:MM from 09:15 to 15:30 "
                            "(IST), quoted"),
    ({"roll_after": 1430}, f"{KEY}.roll_after: 1430 (read by YAML as 23:50) is not allowed -- expected a time HH:MM "
                           "from 09:15 to 15:30 (IST), quoted"),
    ({"offset": "OTM51"}, f"{KEY}.offset: 'OTM51' is not allowed -- expected ATM, ITM1-ITM50, OTM1-OTM50 or score"),
    ({"offset": "ITM0"}, f"{KEY}.offset: 'ITM0' is not allowed -- expected ATM, ITM1-ITM50, OTM1-OTM50 or score"),
    ({"offset": 1}, f"{KEY}.offset: 1 is not allowed -- expected ATM, ITM1-ITM50, OTM1-OTM50 or score"),
    ({"offset": "ATM", "scoring": {}}, f"{KEY}.scoring: allowed only with offset: score -- offset 'ATM' names the "
                                       "strike itself"),
    ({"scoring": {"weights": {"delta": -1}}}, f"{KEY}.scoring.weights.delta: -1 is not allowed -- expected a "
                                              "number, 0 or more"),
    ({"scoring": {"weights": {"delta": 0, "spread": 0}}}, f"{KEY}.scoring.weights: {{'delta': 0, 'spread': 0}} is "
                                                          "not allowed -- at least one weight must be above 0"),
    ({"scoring": {"weights": {"gamma": 1}}}, f"{KEY}.scoring.weights.gamma: unknown key -- allowed keys are "
                                             "distance, delta, iv_rank, liquidity, spread"),
    ({"scoring": {"max_strikes_from_atm": 51}}, f"{KEY}.scoring.max_strikes_from_atm: 51 is not allowed -- "
                                                "expected a whole number from 0 to 50"),
    ({"filters": {"min_oi": 10.5}}, f"{KEY}.filters.min_oi: 10.5 is not allowed -- expected a whole number, 0 or "
                                    "more"),
    ({"filters": {"max_spread_pct": 0}}, f"{KEY}.filters.max_spread_pct: 0 is not allowed -- expected a percent of "
                                         "the mid price, above 0 and at most 100, or null for no limit"),
    ({"lots": 0}, f"{KEY}.lots: 0 is not allowed -- expected a whole number of lots (1 or more) or premium_risk"),
    ({"lots": 1.5}, f"{KEY}.lots: 1.5 is not allowed -- expected a whole number of lots (1 or more) or premium_risk"),
    ({"lots": 2, "max_lots": 4}, f"{KEY}.max_lots: allowed only with lots: premium_risk -- lots: 2 fixes the size"),
    ({"lots": "premium_risk", "max_lots": 0}, f"{KEY}.max_lots: 0 is not allowed -- expected a whole number of "
                                              "lots, 1 or more"),
    ({"stop": "100%"}, f"{KEY}.stop: '100%' is not allowed -- expected rupees of premium from the entry (a number "
                       "above 0, e.g. 40) or a percent above 0 and below 100 of the entry premium as a string (e.g. "
                       "\"30%\")"),
    ({"target": -5}, f"{KEY}.target: -5 is not allowed -- expected rupees of premium from the entry (a number above "
                     "0, e.g. 40) or a percent above 0 of the entry premium as a string (e.g. \"30%\")"),
])
def test_each_problem_names_key_value_and_what_is_allowed(raw, problem):
    assert problems_of(raw) == [problem]


def test_every_problem_is_collected_not_just_the_first():
    assert len(problems_of({"expiry": "x", "offset": "y", "lots": 0, "stop": "0%", "colour": 1})) == 5


def test_premium_levels():
    assert parsed({"stop": "30%", "target": "150 %"}).target == PremiumLevel(150.0, True)   # a target may be >100%
    assert PremiumLevel(30, True).distance(80.0) == 24.0 and PremiumLevel(12.5, False).distance(80.0) == 12.5
    assert str(PremiumLevel(30, True)) == "30%" and str(PremiumLevel(12.5, False)) == "12.5"


def test_the_config_checks_an_options_symbol_in_full():
    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())

    def with_symbol(entry: dict[str, Any]) -> dict[str, Any]:
        raw = copy.deepcopy(base)
        raw["symbols"] = [*raw["symbols"], entry]
        return raw

    def problems_with(entry: dict[str, Any]) -> list[str]:
        with pytest.raises(ConfigError) as e:
            parse_config(with_symbol(entry))
        return e.value.problems

    n = len(base["symbols"])
    nifty = {"symbol": "NIFTY", "fyers": "NSE:NIFTY50-INDEX", "exchange": "NSE_INDEX",
             "strategy": next(iter(base["strategies"])), "instrument": "options"}
    cfg = parse_config(with_symbol({**nifty, "options": {"expiry": "nearest_weekly", "offset": "ATM", "lots": 1}}))
    assert cfg.symbol("NIFTY").options == OptionsSpec() and cfg.quote_exchange("NIFTY") == "NSE_INDEX"
    assert problems_with({**nifty, "options": {"offset": "OTM0", "lots": 0}}) == [
        f"symbols[{n}].options.offset: 'OTM0' is not allowed -- expected ATM, ITM1-ITM50, OTM1-OTM50 or score",
        f"symbols[{n}].options.lots: 0 is not allowed -- expected a whole number of lots (1 or more) or premium_risk"]
    equity = {**nifty, "symbol": "SBIN2", "fyers": "NSE:SBIN2-EQ"}
    del equity["exchange"]
    assert problems_with({**equity, "instrument": "future"}) == [
        f"symbols[{n}].instrument: 'future' is not allowed -- expected one of equity, options"]
    assert problems_with({**equity, "instrument": "equity", "options": {}}) == [
        f"symbols[{n}].options: allowed only with instrument: options"]


def test_a_symbols_own_exchange_names_an_index_for_its_options_only():
    from core.config import SymbolSpec
    from options.spec import OptionsSpec as Spec

    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    n = len(base["symbols"])
    strategy = next(iter(base["strategies"]))

    def problems_with(entry: dict[str, Any]) -> list[str]:
        raw = copy.deepcopy(base)
        raw["symbols"] = [*raw["symbols"], entry]
        with pytest.raises(ConfigError) as e:
            parse_config(raw)
        return e.value.problems

    assert problems_with({"symbol": "NIFTY", "strategy": strategy, "exchange": "NSE_INDEX"}) == [
        f"symbols[{n}].exchange: 'NSE_INDEX' is not allowed without instrument: options -- an index cannot be "
        "bought as a share"]
    assert problems_with({"symbol": "SBIN2", "strategy": strategy, "exchange": "NFO"}) == [
        f"symbols[{n}].exchange: 'NFO' is not allowed -- expected one of NSE, NSE_INDEX"]
    raw = copy.deepcopy(base)
    raw["symbols"] = [*raw["symbols"], {"symbol": "SBIN2", "strategy": strategy, "exchange": "NSE"}]
    cfg = parse_config(raw)
    assert cfg.symbol("SBIN2") == SymbolSpec("SBIN2", "NSE:SBIN2-EQ", strategy, "NSE", None)
    assert cfg.quote_exchange("SBIN2") == "NSE" and cfg.quote_exchange("NIFTY23NOV2626000CE") == cfg.exchange
    spec = SymbolSpec("NIFTY", "NSE:NIFTY50-INDEX", strategy, "NSE_INDEX", Spec())
    assert spec.is_options and not cfg.symbol("SBIN2").is_options
