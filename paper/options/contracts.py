"""Which index option contracts exist in the paper broker, and how OpenAlgo names and selects them.

The shipped tables (underlyings.csv: strike grid, lot and freeze quantities, pricing model; expiries.csv: the
expiry calendar) say what is listed. Symbols follow OpenAlgo: [BASE][DDMMMYY][STRIKE][CE|PE], e.g.
NIFTY24NOV2624000CE. Strike selection follows OpenAlgo's optionsymbol: ATM is the listed strike nearest the
underlying's LTP (the lower one on a tie), ITMn/OTMn walk n strikes down or up the list (down for ITM calls and
OTM puts).
"""
from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from paper.options.pricing import Smile

HERE = Path(__file__).resolve().parent
UNDERLYINGS_FILE = HERE / "underlyings.csv"
EXPIRIES_FILE = HERE / "expiries.csv"
OFFSET_RE = re.compile(r"^(ATM|(ITM|OTM)([1-9]|[1-4][0-9]|50))$")
SYMBOL_RE = re.compile(r"^([A-Z]+)(\d{2}[A-Z]{3}\d{2})(\d+(?:\.\d+)?)(CE|PE)$")
UNDERLYING_RE = re.compile(r"^([A-Z]+)(\d{2}[A-Z]{3}\d{2})(?:FUT)?$")
_COLUMNS = ("underlying", "quote_exchange", "exchange", "strike_interval", "lot_size", "freeze_qty", "tick_size",
            "strikes_each_side", "atm_vol", "skew", "curvature", "rate", "spread_ticks")


class OptionsTableError(ValueError):
    """A shipped table is malformed: the message names the file, line and field."""


@dataclass(frozen=True)
class Underlying:
    name: str
    quote_exchange: str     # where its index quote arrives (NSE_INDEX)
    exchange: str           # where its options trade (NFO)
    strike_interval: float
    lot_size: int
    freeze_qty: int
    tick_size: float
    strikes_each_side: int
    smile: Smile
    rate: float
    spread_ticks: int


@dataclass(frozen=True)
class Contract:
    underlying: str
    expiry: date
    strike: float
    option_type: str        # CE or PE

    @property
    def is_call(self) -> bool:
        return self.option_type == "CE"

    @property
    def symbol(self) -> str:
        return option_symbol(self.underlying, expiry_code(self.expiry), self.strike, self.option_type)


def expiry_code(d: date) -> str:
    """DDMMMYY as in option symbols and expiry_date fields: 24NOV26."""
    return d.strftime("%d%b%y").upper()


def expiry_label(d: date) -> str:
    """DD-MMM-YY as /api/v1/expiry lists them: 24-NOV-26."""
    return d.strftime("%d-%b-%y").upper()


def parse_expiry_code(text: str) -> date | None:
    try:
        return datetime.strptime(text.upper(), "%d%b%y").date()
    except ValueError:
        return None


def strike_text(strike: float) -> str:
    """A whole strike without '.0' (24000), a fractional one as is (292.5), as OpenAlgo writes them."""
    return str(int(strike)) if strike == int(strike) else str(strike)


def option_symbol(base: str, code: str, strike: float, option_type: str) -> str:
    return f"{base}{code}{strike_text(strike)}{option_type.upper()}"


def parse_symbol(symbol: str) -> Contract | None:
    m = SYMBOL_RE.match(symbol)
    if m is None:
        return None
    expiry = parse_expiry_code(m.group(2))
    if expiry is None:
        return None
    return Contract(m.group(1), expiry, float(m.group(3)), m.group(4))


def split_underlying(underlying: str) -> tuple[str, str | None]:
    """NIFTY -> (NIFTY, None); NIFTY24NOV26FUT -> (NIFTY, 24NOV26), as OpenAlgo's parse_underlying_symbol."""
    m = UNDERLYING_RE.match(underlying.upper())
    if m:
        return m.group(1), m.group(2)
    return underlying.upper(), None


def atm_strike(ltp: float, strikes: list[float]) -> float:
    """The listed strike nearest the LTP; the lower of two equally near (the first in ascending order)."""
    return min(strikes, key=lambda k: abs(k - ltp))


def offset_strike(atm: float, offset: str, option_type: str, strikes: list[float]) -> float | None:
    """The strike `offset` names from the sorted listed `strikes`; None when it lies beyond the list."""
    m = OFFSET_RE.match(offset.upper())
    if m is None or atm not in strikes:
        return None
    i = strikes.index(atm)
    if m.group(1) != "ATM":
        n = int(m.group(3))
        up = (m.group(2) == "ITM") != (option_type.upper() == "CE")   # ITM call / OTM put: lower strikes
        i = i + n if up else i - n
    return strikes[i] if 0 <= i < len(strikes) else None


def labels(strike: float, atm: float, strikes: list[float]) -> tuple[str, str]:
    """(CE label, PE label) as OpenAlgo's optionchain: below ATM a call is ITMn and a put OTMn."""
    if strike == atm:
        return "ATM", "ATM"
    n = abs(strikes.index(strike) - strikes.index(atm))
    return (f"ITM{n}", f"OTM{n}") if strike < atm else (f"OTM{n}", f"ITM{n}")


class OptionsBook:
    """The listed index options: underlyings and their expiry calendar."""

    def __init__(self, underlyings: Iterable[Underlying], expiries: dict[str, list[tuple[date, str]]]):
        self.underlyings = {u.name: u for u in underlyings}
        self.expiries = {k: sorted(v) for k, v in expiries.items()}
        self.by_exchange = {(u.name, u.quote_exchange) for u in self.underlyings.values()}

    def underlying(self, name: str) -> Underlying | None:
        return self.underlyings.get(name)

    def listed_expiries(self, name: str, today: date, kind: str | None = None) -> list[date]:
        """Expiries of `name` on or after `today` (the broker's date), oldest first."""
        return [d for d, k in self.expiries.get(name, ()) if d >= today and (kind is None or k == kind)]

    def strikes(self, u: Underlying, ltp: float) -> list[float]:
        """The listed strikes around `ltp`: the grid strike nearest it and strikes_each_side either side."""
        step = u.strike_interval
        centre = math.floor(ltp / step + 0.5) * step
        out = [round(centre + i * step, 6) for i in range(-u.strikes_each_side, u.strikes_each_side + 1)]
        return [k for k in out if k > 0]

    def contract(self, symbol: str, exchange: str, today: date) -> tuple[Contract, Underlying] | None:
        """The contract `symbol` names when it is listed on `exchange` and not expired before `today`."""
        c = parse_symbol(symbol)
        if c is None or c.symbol != symbol:
            return None
        u = self.underlyings.get(c.underlying)
        if u is None or u.exchange != exchange or c.expiry < today:
            return None
        if c.expiry not in {d for d, _ in self.expiries.get(c.underlying, ())}:
            return None
        n = c.strike / u.strike_interval
        if c.strike <= 0 or abs(n - round(n)) > 1e-9:
            return None
        return c, u


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OptionsTableError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        raise OptionsTableError(f"{path}: no header line")
    header = next(csv.reader([lines[0][1]]))
    out = []
    for (n, _), row in zip(lines[1:], csv.reader(line for _, line in lines[1:]), strict=True):
        if len(row) != len(header):
            raise OptionsTableError(f"{path}:{n}: {len(row)} fields, expected {len(header)} ({','.join(header)})")
        out.append((n, dict(zip(header, (c.strip() for c in row), strict=True))))
    return out


def _num(path: Path, n: int, row: dict[str, str], name: str, low: float, integer: bool = False) -> float:
    try:
        x = float(row[name])
    except (KeyError, ValueError):
        raise OptionsTableError(f"{path}:{n}: {name} {row.get(name)!r} is not a number") from None
    if not math.isfinite(x) or x < low or (integer and x != int(x)):
        kind = "a whole number" if integer else "a number"
        raise OptionsTableError(f"{path}:{n}: {name} {row[name]!r} must be {kind} >= {low:g}")
    return x


def load(underlyings_file: Path | str = UNDERLYINGS_FILE, expiries_file: Path | str = EXPIRIES_FILE) -> OptionsBook:
    """Read both tables; OptionsTableError names the file, line and value that is wrong."""
    up, ep = Path(underlyings_file), Path(expiries_file)
    unds: list[Underlying] = []
    for n, r in _rows(up):
        missing = [c for c in _COLUMNS if c not in r]
        if missing:
            raise OptionsTableError(f"{up}: missing column(s) {', '.join(missing)}")
        unds.append(Underlying(
            name=r["underlying"], quote_exchange=r["quote_exchange"], exchange=r["exchange"],
            strike_interval=_num(up, n, r, "strike_interval", 0.01), lot_size=int(_num(up, n, r, "lot_size", 1, True)),
            freeze_qty=int(_num(up, n, r, "freeze_qty", 1, True)), tick_size=_num(up, n, r, "tick_size", 0.01),
            strikes_each_side=int(_num(up, n, r, "strikes_each_side", 1, True)),
            smile=Smile(_num(up, n, r, "atm_vol", 0.001), float(r["skew"]), float(r["curvature"])),
            rate=_num(up, n, r, "rate", 0.0), spread_ticks=int(_num(up, n, r, "spread_ticks", 1, True))))
    names = {u.name for u in unds}
    expiries: dict[str, list[tuple[date, str]]] = {}
    for n, r in _rows(ep):
        if r.get("underlying") not in names:
            raise OptionsTableError(f"{ep}:{n}: underlying {r.get('underlying')!r} is not in {up.name}")
        try:
            d = date.fromisoformat(r["expiry"])
        except (KeyError, ValueError):
            raise OptionsTableError(f"{ep}:{n}: expiry {r.get('expiry')!r} is not a YYYY-MM-DD date") from None
        if r.get("kind") not in ("weekly", "monthly"):
            raise OptionsTableError(f"{ep}:{n}: kind {r.get('kind')!r} must be weekly or monthly")
        expiries.setdefault(r["underlying"], []).append((d, r["kind"]))
    return OptionsBook(unds, expiries)
