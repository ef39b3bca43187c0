"""The daemon's entry point and supervisor.

    python driver.py              run the daemon (replay with LIVE_DATA=false, Fyers with LIVE_DATA=true)
    python driver.py --check      validate config.yaml, .env and the database, then exit 0 or 2
    python driver.py status       what the database says: positions, orders, P&L, trading state
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.config import DEFAULT_CONFIG_PATH, Config, ConfigError, check_secrets_for_mode, load_config, load_secrets

log = logging.getLogger("driver")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driver.py", description="Intraday trading daemon for NSE equities.")
    p.add_argument("command", nargs="?", default="run", choices=("run", "status"),
                   help="run the daemon (default) or print its status from the database")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="config file (default: config.yaml)")
    p.add_argument("--check", action="store_true", help="validate config, .env and database, then exit")
    p.add_argument("--replay", metavar="SOURCE", help="replay source: synthetic or a recorded file")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="trading day to replay")
    p.add_argument("--speed", metavar="SPEED", help="replay speed: max, 1 (real time) or a multiple")
    p.add_argument("--json", action="store_true", help="status: print one JSON object")
    return p


def load_everything(config_path: Path) -> tuple[Config, "object", list[str]]:
    """Config and secrets, with every problem found (config errors, env errors, missing secrets)."""
    problems: list[str] = []
    secrets, env_problems = load_secrets()
    problems.extend(env_problems)
    cfg = None
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        problems.extend(e.problems)
    if cfg is not None:
        problems.extend(check_secrets_for_mode(cfg, secrets))
    return cfg, secrets, problems


def check(config_path: Path) -> int:
    """--check: report what was checked, or every problem; exit 0 or 2."""
    import db

    cfg, secrets, problems = load_everything(config_path)
    checked: list[str] = []
    if cfg is not None:
        checked.append(f"config: {config_path} ({len(cfg.symbols)} symbols, {cfg.workers} workers, "
                       f"mode {cfg.mode.value})")
    if not any(p.split(":")[0] in ("APP_KEY", "HOST_SERVER", "LIVE_DATA", "FYERS_APP_ID", "FYERS_ACCESS_TOKEN")
               for p in problems):
        feed = "Fyers data socket" if secrets.live_data else "replay"
        checked.append(f".env: secrets present for the chosen mode (feed: {feed}, broker: {secrets.host_server})")
    try:
        where = db.check_connection(secrets.database_url)
        db.initialize_database(secrets.database_url)
        checked.append(f"database: connected to {where}, tables ready")
    except db.DatabaseError as e:
        problems.append(f"DATABASE_URL: {e}")
    for line in checked:
        print(f"ok   {line}")
    for line in problems:
        print(f"FAIL {line}")
    if problems:
        print(f"{len(problems)} problem(s) found; the daemon would not start.")
        return EXIT_CONFIG
    print("all checks passed")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check:
        return check(args.config)
    cfg, secrets, problems = load_everything(args.config)
    if problems:
        print("Cannot start: fix these in config.yaml or .env (python driver.py --check lists them again):",
              file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_CONFIG
    from daemon.app import run_daemon  # noqa: PLC0415 - heavy imports only when running

    return run_daemon(cfg, secrets, args)


if __name__ == "__main__":
    sys.exit(main())
