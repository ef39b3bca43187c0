"""`python driver.py strategy new NAME`: write user_strategies/NAME.py, a commented strategy that runs and trades,
and print the config lines that use it -- so a trader starts from working code, not from a blank page.

    python driver.py strategy new NAME [--config FILE] [--dir DIR]

The file goes into DIR (default: user_strategies/ beside the config file); an existing file is never
overwritten. Exit 0 when written, 2 on a bad name or an existing file.
"""
from __future__ import annotations

import argparse
import keyword
import os
import sys
from pathlib import Path
from string import Template

from core.config import DEFAULT_CONFIG_PATH

EXIT_OK, EXIT_USAGE = 0, 2

# The example: a candle strategy on strategies.candle_strategy.CandleStrategy, which already handles the day,
# the ATR stop and target, acting on the tick that closed a candle, and state for a restart. $cls and $name are
# filled in; everything else is written as is.
TEMPLATE = Template('''"""$cls: my own strategy (written by `python driver.py strategy new $name`; edit freely).

Idea: trade the close crossing its simple moving average. When a candle closes above SMA(period) after closing
below it, go long; when it closes below after closing above, go short (if allow_short); a position exits at
the first candle that closes back on the other side. On top of that, CandleStrategy (strategies/candle_strategy.py)
gives every entry a stop `atr_multiple` ATRs away (and a target with take_profit_atr > 0), exits everything at
`exit_at`, enters nothing before the session opens or after its entry cutoff, and starts each day afresh.

The contract (strategies/base.py): the framework calls on_tick / on_candle and saves state_dict() for a
restart; a strategy emits a signal by returning it. A CandleStrategy subclass writes only the four methods
below. An exception raised here turns this symbol's strategy off for the day; its position is still managed
and squared off.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.enums import PositionSide
from strategies.base import Candle
from strategies.candle_strategy import CandleStrategy, common_param_problems
from strategies.indicators import Indicator, Sma


@dataclass(frozen=True)
class ${cls}Params:
    """The parameters, as config.yaml gives them under `params:` (each has a default; --check types them)."""

    candle_seconds: int = 60      # candles built from ticks at this resolution (must divide 3600)
    period: int = 20              # SMA length, in candles
    allow_short: bool = True      # also sell short on a cross down
    atr_period: int = 14          # ATR length, in candles (the stop is measured in ATRs)
    atr_multiple: float = 2.0     # stop distance in ATRs from the entry candle's close
    take_profit_atr: float = 0.0  # target distance in ATRs; 0: no target
    exit_at: str = "15:05"        # IST time at which any position is closed


class $cls(CandleStrategy):
    kind = "$name"               # saved with the state: a restart only loads state of the same kind
    Params = ${cls}Params

    @classmethod
    def check_params(cls, p: ${cls}Params) -> list[str]:
        """Rules across the parameters, checked by `python driver.py --check` (each: "name: why")."""
        out = common_param_problems(p)   # candle_seconds, atr_period, atr_multiple, take_profit_atr, exit_at
        if p.period < 2:
            out.append(f"period: {p.period!r} is not allowed -- must be at least 2")
        return out

    def make_indicators(self) -> dict[str, Indicator[Any]]:
        """The indicators, by name: CandleStrategy resets them each day and saves them for a restart."""
        self.sma = Sma(self.params.period)
        return {"sma": self.sma}

    def reset_day(self) -> None:
        """Forget what is remembered between candles (called at the start of each day)."""
        self.was_above: bool | None = None  # did the last candle close above the SMA? None: not known yet

    def extra_state(self) -> dict[str, Any]:
        """What reset_day sets, as JSON-safe data, saved for a restart."""
        return {"was_above": self.was_above}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        """Rebuild what extra_state saved."""
        self.was_above = state["was_above"]

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        """Each closed candle of the session: update the indicators and decide.

        Returns (entry, entry note, exit note): entry +1 long, -1 short, 0 none; an exit note other than ""
        exits the position held. Both are acted on by the tick that closed the candle."""
        sma = self.sma.update(candle)
        if sma is None:  # still warming up
            return 0, "", ""
        above = candle.close > sma
        was_above, self.was_above = self.was_above, above
        exit_note = ""
        if self.position is PositionSide.LONG and not above:
            exit_note = f"close {candle.close} back below SMA({self.params.period}) {sma:.2f}"
        elif self.position is PositionSide.SHORT and above:
            exit_note = f"close {candle.close} back above SMA({self.params.period}) {sma:.2f}"
        if was_above is None or above == was_above:  # no cross on this candle
            return 0, "", exit_note
        if above:
            return 1, f"close {candle.close} crossed above SMA({self.params.period}) {sma:.2f}", exit_note
        if self.params.allow_short:
            return -1, f"close {candle.close} crossed below SMA({self.params.period}) {sma:.2f}", exit_note
        return 0, "", exit_note
''')


def class_name(name: str) -> str:
    """NAME in CamelCase: my_breakout -> MyBreakout."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return camel if camel.isidentifier() else f"S{camel}"


def name_problem(name: str) -> str | None:
    """Why NAME cannot name a strategy file, or None."""
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
        return f"{name!r} is not allowed -- NAME must be a Python identifier (letters, digits, _), e.g. my_breakout"
    return None


def kind_for(file: Path, config: Path, cls: str) -> str:
    """The `kind` that names `cls` in `file` from `config`: relative to the config's folder where it can be."""
    base = config.resolve().parent
    try:
        rel = Path(os.path.relpath(file.resolve(), base))
    except ValueError:  # another drive
        rel = file.resolve()
    shown = rel if not rel.parts or rel.parts[0] != ".." else file.resolve()
    return f"{shown.as_posix()}:{cls}"


def write_strategy(name: str, directory: Path) -> Path:
    """Write directory/NAME.py from the template; FileExistsError if it is there already."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite a trader's file
        f.write(TEMPLATE.substitute(cls=class_name(name), name=name))
    return path


def config_lines(name: str, kind: str) -> str:
    """The config.yaml lines that use the strategy (its params at their defaults, as a starting point)."""
    return (f"strategies:\n  {name}:\n    kind: {kind}\n    params:\n      candle_seconds: 60\n      period: 20\n"
            f"symbols:\n  - {{symbol: SBIN, strategy: {name}}}\n")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="driver.py strategy", description="Strategies of your own.")
    sub = p.add_subparsers(dest="action", required=True, metavar="new")
    n = sub.add_parser("new", help="write user_strategies/NAME.py, a working example to start from")
    n.add_argument("name", metavar="NAME", help="the strategy's name (a Python identifier), e.g. my_breakout")
    n.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                   help="the config that will use it (default config.yaml): its kind is relative to its folder")
    n.add_argument("--dir", type=Path, default=None, help="where to write it (default: user_strategies/ beside "
                                                          "the config)")
    args = p.parse_args(argv)
    why = name_problem(args.name)
    if why:
        print(f"strategy new: {why}", file=sys.stderr)
        return EXIT_USAGE
    directory = args.dir if args.dir is not None else args.config.resolve().parent / "user_strategies"
    try:
        path = write_strategy(args.name, directory)
    except FileExistsError:
        print(f"strategy new: {directory / (args.name + '.py')} exists already; not overwritten (choose another "
              "NAME or delete it)", file=sys.stderr)
        return EXIT_USAGE
    kind = kind_for(path, args.config, class_name(args.name))
    print(f"wrote {path}\n\nTo trade it, add these entries to the two lists in {args.config.name}:\n\n"
          f"{config_lines(args.name, kind)}\nthen `python driver.py --check` validates it "
          f"and `python driver.py` runs it (mode paper or signals_only to try it).")
    return EXIT_OK
