"""Run the real daemon (driver.py in a subprocess) against a real paper broker on a replayed day, and read
back what both sides recorded. Used by the end-to-end tests."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE_CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
DAY = "2026-11-20"

SYMBOLS = ["SBIN", "RELIANCE", "INFY", "TCS", {"symbol": "LT", "strategy": "mac"},
           {"symbol": "ITC", "strategy": "mac"}, {"symbol": "WIPRO", "strategy": "mac"},
           {"symbol": "MARUTI", "strategy": "mac"}]


def short_day_config(tmp: Path, **overrides: Any) -> Path:
    """A 90-minute session (09:15-10:45) on eight symbols: a whole day's rules in a few seconds."""
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["symbols"] = SYMBOLS
    cfg["session"] = {"pre_open": "09:00", "open": "09:15", "entry_cutoff": "10:30", "square_off": "10:40",
                      "close": "10:45"}
    cfg["risk"].update(global_max_loss_pct=None, global_max_profit_pct=None, daily_loss_limit=None,
                       max_drawdown_pct=None, cooldown_minutes=5)
    cfg["monitoring"].update(log_dir=str(tmp / "logs"), reports_dir=str(tmp / "reports"), log_level="INFO")
    cfg["paper_broker"]["state_file"] = str(tmp / "paper.sqlite")
    cfg["dashboard"] = {"port": 0}  # a test that wants one gives it a free port
    for section, values in overrides.items():
        if isinstance(values, dict):
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@dataclass
class Run:
    returncode: int
    output: str
    db_url: str


# set by a test for one daemon run only, never inherited from the environment the tests run in
FAULT_VARS = ("DAEMON_CRASH_AT", "DAEMON_KILL_AT", "DAEMON_FEED_DROP_AT",
              "DAEMON_FEED_STARTED_DELAY_S", "DAEMON_INJECT_TICKS")


def daemon_env(db_url: str, env_extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "HOST_SERVER", "APP_KEY", "LIVE_DATA", *FAULT_VARS)}
    env.update({"DATABASE_URL": db_url, "LIVE_DATA": "false", "PYTHONUNBUFFERED": "1"}, **env_extra)
    return env


def run_daemon(config: Path, db_url: str, env_extra: dict[str, str], args: list[str] | None = None,
               timeout: float = 180) -> Run:
    p = subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(config), "--date", DAY,
                        *(args or [])], capture_output=True, text=True, env=daemon_env(db_url, env_extra), cwd=ROOT,
                       timeout=timeout)
    return Run(p.returncode, p.stdout + p.stderr, db_url)


def start_daemon(config: Path, db_url: str, env_extra: dict[str, str], args: list[str] | None = None,
                 output: Path | None = None) -> subprocess.Popen:
    """run_daemon without waiting: stdout and stderr go together to `output` (a file, so that the test can
    read it while the daemon runs) or to a pipe."""
    out = open(output, "w") if output is not None else subprocess.PIPE  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "--config", str(config), "--date", DAY,
                                 *(args or [])], stdout=out, stderr=subprocess.STDOUT, text=True,
                                env=daemon_env(db_url, env_extra), cwd=ROOT)
    finally:
        if output is not None:
            out.close()


def rows(db_url: str, sql: str, **params: Any) -> list[tuple]:
    import db
    return db.DBHandler(db.setup(db_url)[0]).execute_sql(sql, params)
