"""Flag handling shared by the candle commands (history fetch, backtest, backtest optimize), so a bad date,
range, symbol list or config is refused with the same message (exit 2) whichever command was given it."""
from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Config


class UsageError(Exception):
    """A bad argument: the command prints the message and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting, so the command words the error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_day(text: str, flag: str) -> date:
    """A YYYY-MM-DD date given to `flag`."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a date -- use YYYY-MM-DD") from None


def parse_range(first: str, last: str) -> tuple[date, date]:
    """--from and --to, the first not after the last."""
    a, b = parse_day(first, "--from"), parse_day(last, "--to")
    if a > b:
        raise UsageError(f"--from {a} is after --to {b}")
    return a, b


def parse_symbols(text: str | None) -> list[str] | None:
    """--symbols A,B as a list; None when the flag was not given (the caller's default applies)."""
    if text is None:
        return None
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise UsageError("--symbols: no symbol given")
    return symbols


def load_config_arg(path: Path | None) -> tuple[Config, Path]:
    """--config (default config.yaml), validated; returns it and the path it came from."""
    from core.config import DEFAULT_CONFIG_PATH, ConfigError, load_config

    config_path = path or DEFAULT_CONFIG_PATH
    try:
        return load_config(config_path), Path(config_path)
    except ConfigError as e:
        raise UsageError("config: " + "; ".join(e.problems)) from None
