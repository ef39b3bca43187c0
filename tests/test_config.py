import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config import ConfigError, check_secrets_for_mode, load_config, load_secrets, parse_config
from core.enums import ExecutionMode

ROOT = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((ROOT / "config.yaml").read_text())


def problems_for(mutate) -> list[str]:
    raw = copy.deepcopy(BASE)
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    return e.value.problems


def test_shipped_config_is_valid():
    cfg = load_config(ROOT / "config.yaml")
    assert cfg.mode is ExecutionMode.PAPER
    assert cfg.workers == 8
    assert cfg.symbol("SBIN").fyers == "NSE:SBIN-EQ"
    assert cfg.symbol("LT").strategy == "mac"
    assert cfg.session.open.hour == 9 and cfg.session.open.minute == 15
    assert 0 < cfg.risk.risk_per_trade <= 1
    assert cfg.backtest.risk_free_rate == 0.065


def test_a_config_without_a_backtest_section_gets_the_default_risk_free_rate():
    raw = copy.deepcopy(BASE)
    del raw["backtest"]
    assert parse_config(raw).backtest.risk_free_rate == 0.065


@pytest.mark.parametrize("mutate, key, fragment", [
    (lambda r: r["risk"].update(capital=-5), "risk.capital", "greater than 0"),
    (lambda r: r["risk"].update(capital="lots"), "risk.capital", "expected a number"),
    (lambda r: r["risk"].update(risk_per_trade=0), "risk.risk_per_trade", "greater than 0"),
    (lambda r: r["risk"].update(risk_per_trade=1.5), "risk.risk_per_trade", "at most 1"),
    (lambda r: r["risk"].update(symbol_max_loss_pct=2.0), "risk.symbol_max_loss_pct", "negative"),
    (lambda r: r["risk"].update(global_max_profit_pct=-1.0), "risk.global_max_profit_pct", "positive"),
    (lambda r: r["risk"].update(max_active_trades=2.5), "risk.max_active_trades", "whole number"),
    (lambda r: r["risk"].update(force_exit_on_cap="yes"), "risk.force_exit_on_cap", "true or false"),
    (lambda r: r["risk"].update(flatten_on_halt=1), "risk.flatten_on_halt", "true or false"),
    (lambda r: r["risk"].update(bogus=1), "risk.bogus", "unknown key"),
    (lambda r: r.update(mode="yolo"), "mode", "signals_only, paper, live"),
    (lambda r: r.update(workers=0), "workers", "1 to 64"),
    (lambda r: r["symbols"].append("SBIN"), "symbols[16].symbol", "duplicate"),
    (lambda r: r["symbols"].append("NSE:ABB-EQ"), "symbols[16].symbol", "OpenAlgo symbol"),
    (lambda r: r["symbols"].append({"symbol": "ABB", "strategy": "nope"}), "symbols[16].strategy", "unknown strategy"),
    (lambda r: r["strategies"]["orb"].update(kind="martingale"), "strategies.orb.kind", "unknown strategy"),
    (lambda r: r["strategies"]["orb"].update(kind="no_such_module:Strategy"), "strategies.orb.kind",
     "cannot import it (ModuleNotFoundError"),
    (lambda r: r["strategies"]["orb"].update(kind="core.config:Config"), "strategies.orb.kind",
     "not a subclass of strategies.base.Strategy"),
    (lambda r: r["session"].update(square_off="15:45"), "session.close", "earlier than"),
    (lambda r: r["market_data"].update(persist="always"), "market_data.persist", "off, every_tick, sampled"),
    (lambda r: r["market_data"].update(max_ahead_s=0), "market_data.max_ahead_s", "at least 1"),
    (lambda r: r["market_data"].update(gap_confirm_ticks=1), "market_data.gap_confirm_ticks", "at least 2"),
    (lambda r: r["market_data"].update(gap_confirm_ticks=2.5), "market_data.gap_confirm_ticks", "whole number"),
    (lambda r: r["market_data"].update(max_price_move_pct=0), "market_data.max_price_move_pct", "greater than 0"),
    (lambda r: r["replay"].update(speed="fast"), "replay.speed", "max or a positive multiple"),
    (lambda r: r["replay"].update(speed="nan"), "replay.speed", "max or a positive multiple"),
    (lambda r: r["replay"].update(speed="inf"), "replay.speed", "max or a positive multiple"),
    (lambda r: r["replay"].update(max_bad_row_share=-0.1), "replay.max_bad_row_share", "at least 0"),
    (lambda r: r["replay"].update(max_bad_row_share="1%"), "replay.max_bad_row_share", "expected a number"),
    (lambda r: r.update(colour="blue"), "colour", "unknown key"),
    (lambda r: r.update(exchange="BSE"), "exchange", "NSE's charges only"),
    (lambda r: r["costs"].update(commission_per_order=20), "costs.commission_per_order", "replaced by costs.rates"),
    (lambda r: r["costs"]["rates"][2].update({"from": "2020-12-31"}), "costs.rates[2].from", "ascending"),
    (lambda r: r["costs"]["rates"][1].update(exchange_txn_pct=-0.003), "costs.rates[1].exchange_txn_pct",
     "must not be negative"),
    (lambda r: r["costs"]["rates"][0].update(gst_pct="18%"), "costs.rates[0].gst_pct", "expected a number"),
    (lambda r: r["costs"]["rates"][0].pop("stt_sell_pct"), "costs.rates[0]", "missing stt_sell_pct"),
    (lambda r: r["costs"]["rates"][0].update({"from": "July 2020"}), "costs.rates[0].from", "YYYY-MM-DD"),
    (lambda r: r["costs"]["rates"][3].update(ctt_pct=0.01), "costs.rates[3].ctt_pct", "unknown key"),
    (lambda r: r["costs"].update(rates=[]), "costs.rates", "list of periods"),
    (lambda r: r["replay"].update(date="2019-06-03"), "replay.date", "costs.rates starts 2020-07-01"),
    (lambda r: r["replay"].update(date="2026-13-45"), "replay.date", "not a calendar date"),
    (lambda r: r["risk"].update(max_cost_share_of_risk=0), "risk.max_cost_share_of_risk", "greater than 0"),
    (lambda r: r["orders"].update(broker_requests_per_s=0), "orders.broker_requests_per_s", "at least 1"),
    (lambda r: r["orders"].update(broker_requests_per_s=2.5), "orders.broker_requests_per_s", "whole number"),
    (lambda r: r["backtest"].update(risk_free_rate=6.5), "backtest.risk_free_rate", "(0.065 means 6.5%)"),
    (lambda r: r["backtest"].update(risk_free_rate=-0.01), "backtest.risk_free_rate", "a fraction from 0 to 0.5"),
    (lambda r: r["backtest"].update(risk_free_rate="6.5%"), "backtest.risk_free_rate", "expected a number"),
    (lambda r: r["backtest"].update(riskfree=0.06), "backtest.riskfree", "unknown key"),
])
def test_invalid_values_name_the_key_the_value_and_what_is_allowed(mutate, key, fragment):
    problems = problems_for(mutate)
    hits = [p for p in problems if p.startswith(key + ":")]
    assert hits, f"no problem reported for {key}: {problems}"
    assert fragment in hits[0], hits[0]


def test_a_strategy_kind_may_name_a_class_of_your_own():
    raw = copy.deepcopy(BASE)
    raw["strategies"]["mine"] = {"kind": "tests.faulty_strategy:EnterThenRaise", "params": {"raise_on_tick": 0}}
    raw["symbols"].append({"symbol": "ABB", "strategy": "mine"})
    cfg = parse_config(raw)
    assert cfg.strategies["mine"].kind == "tests.faulty_strategy:EnterThenRaise"
    raw["strategies"]["mine"]["params"] = {"raise_on_tick": "often"}
    assert problems_for(lambda r: r.update(raw)) == [
        "strategies.mine.params.raise_on_tick: 'often' is not allowed -- expected int"]


def test_every_problem_is_reported_not_only_the_first():
    def many(r):
        r["risk"]["capital"] = -1
        r["risk"]["risk_per_trade"] = 2
        r["workers"] = "eight"
    problems = problems_for(many)
    assert {p.split(":")[0] for p in problems} >= {"risk.capital", "risk.risk_per_trade", "workers"}


def test_yaml_times_and_dates_are_understood():
    raw = copy.deepcopy(BASE)
    raw["session"]["open"] = 555          # what YAML 1.1 makes of an unquoted 09:15
    raw["replay"]["date"] = yaml.safe_load("2026-11-20")
    raw["replay"]["speed"] = 10
    cfg = parse_config(raw)
    assert (cfg.session.open.hour, cfg.session.open.minute) == (9, 15)
    assert cfg.replay.date == "2026-11-20" and cfg.replay.speed == "10"


def test_secrets_missing_for_the_mode_are_reported(tmp_path):
    cfg = load_config(ROOT / "config.yaml")
    secrets, problems = load_secrets(tmp_path / "none.env", environ={"LIVE_DATA": "true"})
    assert problems == []
    found = check_secrets_for_mode(cfg, secrets)
    assert any(p.startswith("APP_KEY:") for p in found)
    assert any(p.startswith("FYERS_ACCESS_TOKEN:") for p in found)
    assert "***" not in repr(secrets) and "unset" in repr(secrets)


def test_secrets_repr_never_shows_values(tmp_path):
    env = tmp_path / ".env"
    env.write_text("APP_KEY=supersecretkey123\nFYERS_ACCESS_TOKEN=eyJtoken.value.sig\n")
    secrets, _ = load_secrets(env, environ={})
    assert secrets.app_key == "supersecretkey123"
    assert "supersecretkey123" not in repr(secrets) and "eyJtoken" not in str(secrets)
    assert set(secrets.secret_values()) >= {"supersecretkey123", "eyJtoken.value.sig"}


def test_bad_live_data_switch_is_reported(tmp_path):
    _, problems = load_secrets(tmp_path / "none.env", environ={"LIVE_DATA": "maybe"})
    assert problems and problems[0].startswith("LIVE_DATA:")


def run_driver(*args, env_extra=None, cwd=ROOT):
    import os
    env = {k: v for k, v in os.environ.items() if k not in ("APP_KEY", "DATABASE_URL", "LIVE_DATA")}
    env["HOST_SERVER"] = "http://127.0.0.1:9"  # nothing listens there: never whatever broker runs on this machine
    env["DASHBOARD_TOKEN"] = "t" * 32  # config.yaml serves the dashboard; --check wants its token
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


def test_check_passes_on_a_valid_setup(tmp_path):
    r = run_driver("--check", env_extra={"APP_KEY": "k" * 32, "HOST_SERVER": "http://127.0.0.1:9",
                                         "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout and "database: connected" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("token", "says"), [
    ("", "DASHBOARD_TOKEN: missing or blank in .env while the dashboard is on (dashboard.port: 8780)"),
    ("   ", "DASHBOARD_TOKEN: missing or blank in .env while the dashboard is on (dashboard.port: 8780)"),
    ("short", "DASHBOARD_TOKEN: too short (5 characters; at least 16 are allowed)"),
])
def test_check_names_a_missing_dashboard_token_and_how_to_fix_it(tmp_path, token, says):
    """The environment's value wins over .env's (even blank), so the project's own .env plays no part here."""
    cfg = copy.deepcopy(BASE)
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    env = {"APP_KEY": "k" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}", "DASHBOARD_TOKEN": token}
    r = run_driver("--check", "--config", str(p), env_extra=env)
    assert r.returncode == 2, r.stdout + r.stderr
    fix = "run ./dev.sh setup, which writes a random one into .env, or set dashboard.port: 0"
    assert f"FAIL {says} -- {fix}" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    cfg["dashboard"] = {"port": 0}  # no dashboard, no token needed
    p.write_text(yaml.safe_dump(cfg))
    r = run_driver("--check", "--config", str(p), env_extra=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DASHBOARD_TOKEN" not in r.stdout


def test_check_and_start_fail_with_exit_2_and_list_every_problem(tmp_path):
    bad = copy.deepcopy(BASE)
    bad["risk"]["capital"] = -1
    bad["risk"]["risk_per_trade"] = 3
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    env = {"APP_KEY": "k" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"}
    r = run_driver("--check", "--config", str(p), env_extra=env)
    assert r.returncode == 2
    assert "risk.capital: -1 is not allowed" in r.stdout and "risk.risk_per_trade: 3" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    r = run_driver("--config", str(p), env_extra=env)
    assert r.returncode == 2 and "risk.capital" in r.stderr and "Traceback" not in r.stderr


def test_unreadable_and_malformed_config_are_clear_errors(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("risk: [unclosed\n")
    r = run_driver("--check", "--config", str(p), env_extra={"APP_KEY": "k" * 32, "HOST_SERVER": "http://127.0.0.1:9",
                                                             "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert r.returncode == 2 and "not valid YAML" in r.stdout and "Traceback" not in r.stdout + r.stderr
    r = run_driver("--check", "--config", str(tmp_path / "missing.yaml"), env_extra={"APP_KEY": "k" * 32})
    assert r.returncode == 2 and "cannot read the config file" in r.stdout


def test_unreachable_database_is_reported_with_password_masked(tmp_path):
    r = run_driver("--check", env_extra={"APP_KEY": "k" * 32, "HOST_SERVER": "http://127.0.0.1:9",
                                         "DATABASE_URL": "postgresql://u:hunter2pass@127.0.0.1:1/x"})
    assert r.returncode == 2
    assert "DATABASE_URL: cannot connect" in r.stdout
    assert "hunter2pass" not in r.stdout + r.stderr


def test_a_day_before_the_cost_table_stops_start_up_with_exit_2(tmp_path):
    env = {"APP_KEY": "k" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}", "LIVE_DATA": "false",
           "HOST_SERVER": "http://127.0.0.1:9"}
    r = run_driver("--date", "2019-06-03", env_extra=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--date: '2019-06-03' is not allowed -- costs.rates starts 2020-07-01" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_a_config_with_the_old_flat_commission_is_refused_at_check(tmp_path):
    old = copy.deepcopy(BASE)
    old["costs"] = {"slippage_pct": 0.02, "commission_per_order": 20}
    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(old))
    r = run_driver("--check", "--config", str(p), env_extra={"APP_KEY": "k" * 32, "HOST_SERVER": "http://127.0.0.1:9",
                                                             "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert r.returncode == 2
    assert "FAIL costs.commission_per_order: 20 is no longer used -- replaced by costs.rates" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    # without the old key, a config with no costs.rates runs on the built-in table
    del old["costs"]["commission_per_order"]
    p.write_text(yaml.safe_dump(old))
    r = run_driver("--check", "--config", str(p), env_extra={"APP_KEY": "k" * 32, "HOST_SERVER": "http://127.0.0.1:9",
                                                             "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_built_in_rate_table_is_the_shipped_one():
    from core.costs import DEFAULT_RATES
    assert load_config(ROOT / "config.yaml").costs.rates == DEFAULT_RATES
