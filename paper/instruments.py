"""The paper broker's master contract: which NSE cash-equity symbols exist, their lot and tick sizes.

A real OpenAlgo server refuses an order for a symbol missing from its broker's master contract and the
exchange refuses a price off the tick size; the paper broker does both against `paper/nse_instruments.csv`
(its header says where it came from and when). Symbols outside the file that the daemon pushes quotes for
(synthetic or replayed test symbols) stay tradable, without a tick check.

    python -m paper.instruments refresh [--url URL] [--symbols SBIN,INFY] [--file F]
        asks /api/v1/search of the OpenAlgo server at HOST_SERVER (key APP_KEY, from the environment or
        .env) for every symbol in the file (or the list) and rewrites it; nothing is written if a call fails.
    python -m paper.instruments from-fyers NSE_CM.csv [--file F]
        rebuilds the file from Fyers' public symbol master (public.fyers.in/sym_details/NSE_CM.csv).
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from paper.errors import analyze_error

log = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).resolve().parent / "nse_instruments.csv"
EXCHANGE = "NSE"
COLUMNS = ("symbol", "name", "series", "lot_size", "tick_size", "isin")
# Fyers NSE_CM.csv has no header; these are its columns (Fyers' symbol master documentation).
_FY_NAME, _FY_TYPE, _FY_LOT, _FY_TICK, _FY_ISIN, _FY_DATE, _FY_TICKER, _FY_SYMBOL = 1, 2, 3, 4, 5, 7, 9, 13
_FY_EQUITY_TYPES = ("0", "9")  # the rows OpenAlgo's Fyers master contract files under exchange NSE, type EQ
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class InstrumentFileError(ValueError):
    """The instrument file is unreadable or has a bad line; the message names the file, line and value."""


@dataclass(frozen=True)
class Instrument:
    symbol: str
    name: str
    series: str
    lot_size: int
    tick_size: float
    isin: str = ""

    def row(self) -> list[str]:
        return [self.symbol, self.name, self.series, str(self.lot_size), _num(self.tick_size), self.isin]


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def on_tick(price: float, tick: float) -> bool:
    """True when `price` is a whole number of ticks (to a millionth of a tick: prices arrive as floats)."""
    n = price / tick
    return abs(n - round(n)) < 1e-6


class InstrumentMaster:
    """NSE symbols by name; `header` keeps the file's provenance comment lines."""

    def __init__(self, instruments: Iterable[Instrument] = (), header: Sequence[str] = ()):
        self.by_symbol: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.header = list(header)

    def __len__(self) -> int:
        return len(self.by_symbol)

    def get(self, symbol: str, exchange: str) -> Instrument | None:
        return self.by_symbol.get(symbol) if exchange == EXCHANGE else None

    def check_prices(self, symbol: str, exchange: str, pricetype: str, price: float, trigger: float) -> None:
        """Refuse a LIMIT/SL price or an SL/SL-M trigger off the symbol's tick size, as the exchange does
        (NSE's reject text, relayed by brokers). OpenAlgo itself passes the broker's 400 on; its sandbox
        checks nothing. Symbols outside the master are not checked."""
        inst = self.get(symbol, exchange)
        if inst is None:
            return
        checks = []
        if pricetype in ("LIMIT", "SL"):
            checks.append(("price", price))
        if pricetype in ("SL", "SL-M"):
            checks.append(("trigger price", trigger))
        for what, value in checks:
            if value > 0 and not on_tick(value, inst.tick_size):
                raise analyze_error(400, f"The order {what} is not multiple of the tick size. {symbol} on {exchange} "
                                         f"trades in ticks of {_num(inst.tick_size)}; {what} {value:g} is not one.")

    def search(self, query: str, exchange: str | None, limit: int = 500) -> list[dict]:
        """OpenAlgo's /api/v1/search over this master: case-insensitive match on symbol or name."""
        if exchange not in (None, EXCHANGE):
            return []
        q = query.strip().upper()
        exact = self.by_symbol.get(q)
        hits = [exact] if exact else []
        hits += [i for s, i in sorted(self.by_symbol.items()) if i is not exact and (q in s or q in i.name.upper())]
        return [to_search_row(i) for i in hits[:limit]]


def to_search_row(i: Instrument) -> dict:
    """One instrument as OpenAlgo's search and symbol endpoints show it (Fyers broker, NSE equity)."""
    return {"symbol": i.symbol, "brsymbol": f"NSE:{i.symbol}-{i.series}", "name": i.name, "exchange": EXCHANGE,
            "brexchange": EXCHANGE, "token": "", "expiry": "", "strike": -1.0, "lotsize": i.lot_size,
            "instrumenttype": "EQ", "tick_size": i.tick_size, "isin": i.isin}


# ------------------------------------------------------------------ the file

def load(path: Path | str = DEFAULT_FILE) -> InstrumentMaster:
    """Read the master; InstrumentFileError names the file, line, value and what is allowed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InstrumentFileError(f"{path}: cannot read the instrument file: {getattr(e, 'strerror', None) or e}") \
            from None
    header, body = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            header.append(line)
        elif line.strip():
            body.append((n, line))
    if not body or next(csv.reader([body[0][1]])) != list(COLUMNS):
        raise InstrumentFileError(f"{path}: the first line after the # comments must be the header "
                                  f"{','.join(COLUMNS)}")
    out: list[Instrument] = []
    seen: set[str] = set()
    for (n, _), row in zip(body[1:], csv.reader(line for _, line in body[1:]), strict=False):
        where = f"{path}:{n}"
        if len(row) != len(COLUMNS):
            raise InstrumentFileError(f"{where}: {len(row)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
        sym, name, series, lot, tick, isin = (c.strip() for c in row)
        if not sym or any(c.isspace() for c in sym):
            raise InstrumentFileError(f"{where}: symbol {sym!r} must be non-empty without spaces")
        if sym in seen:
            raise InstrumentFileError(f"{where}: symbol {sym} appears twice")
        try:
            lot_i = int(lot)
        except ValueError:
            lot_i = 0
        if lot_i < 1:
            raise InstrumentFileError(f"{where}: lot_size {lot!r} for {sym} must be a whole number >= 1")
        try:
            tick_f = float(tick)
        except ValueError:
            tick_f = math.nan
        if not (math.isfinite(tick_f) and tick_f > 0):
            raise InstrumentFileError(f"{where}: tick_size {tick!r} for {sym} must be a positive number of rupees")
        seen.add(sym)
        out.append(Instrument(sym, name, series, lot_i, tick_f, isin))
    return InstrumentMaster(out, header)


def write(path: Path | str, master: InstrumentMaster) -> None:
    """Write atomically (a temporary file renamed over the old one): a reader never sees half a file."""
    path = Path(path)
    buf = io.StringIO()
    for line in master.header:
        buf.write(line + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for sym in sorted(master.by_symbol):
        w.writerow(master.by_symbol[sym].row())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def _provenance(source: str, as_of: str) -> list[str]:
    return ["# NSE cash-equity instrument master of the paper broker: its 'master contract' (OpenAlgo exchange NSE,",
            "# instrument type EQ). Orders for symbols not listed here are refused like a real OpenAlgo server refuses",
            "# them; LIMIT/SL prices and triggers must be whole multiples of tick_size (rupees).",
            f"# Source: {source}",
            f"# As of: {as_of}. NSE sets tick sizes by price band and revises them; refresh before relying on them:",
            "#   python -m paper.instruments refresh          (OpenAlgo /api/v1/search at HOST_SERVER, APP_KEY from "
            ".env)",
            "#   python -m paper.instruments from-fyers NSE_CM.csv   (https://public.fyers.in/sym_details/NSE_CM.csv)"]


def from_fyers(text: str, source: str) -> InstrumentMaster:
    """The EQ rows of Fyers' NSE_CM.csv, chosen as OpenAlgo's Fyers master contract chooses them."""
    out: dict[str, Instrument] = {}
    dates: set[str] = set()
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if len(row) <= _FY_SYMBOL or row[_FY_TYPE].strip() not in _FY_EQUITY_TYPES:
            continue
        try:
            inst = Instrument(row[_FY_SYMBOL].strip(), row[_FY_NAME].strip(),
                              row[_FY_TICKER].rsplit("-", 1)[-1].strip(), int(float(row[_FY_LOT])),
                              float(row[_FY_TICK]), row[_FY_ISIN].strip())
        except ValueError:
            raise InstrumentFileError(f"{source}:{n}: lot size {row[_FY_LOT]!r} or tick size {row[_FY_TICK]!r} is "
                                      "not a number") from None
        if inst.symbol and inst.tick_size > 0 and inst.lot_size >= 1:
            out[inst.symbol] = inst
            dates.add(row[_FY_DATE].strip())
    if not out:
        raise InstrumentFileError(f"{source}: no equity rows (exchange instrument type 0 or 9): not Fyers' NSE_CM.csv?")
    as_of = max(dates) if dates else "unknown"
    return InstrumentMaster(out.values(), _provenance(f"Fyers' public symbol master NSE_CM.csv ({source}), rows of "
                                                      "exchange instrument type 0 or 9", f"Fyers' last-update date "
                                                      f"{as_of}"))


# ------------------------------------------------------------------ refresh from an OpenAlgo server

Searcher = Callable[[str], list[dict]]


def refresh(master: InstrumentMaster, symbols: Sequence[str], search: Searcher, url: str,
            now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> tuple[InstrumentMaster, list[str]]:
    """Ask `search` for each symbol; take the row whose symbol matches exactly on NSE. Returns the new master
    (symbols not asked about are kept) and the symbols the server does not know (dropped from it)."""
    found = dict(master.by_symbol)
    missing: list[str] = []
    for sym in symbols:
        rows = [r for r in search(sym) if r.get("symbol") == sym and r.get("exchange") == EXCHANGE]
        if not rows:
            missing.append(sym)
            found.pop(sym, None)
            continue
        r, old = rows[0], master.by_symbol.get(sym)
        try:
            tick = float(r["tick_size"])
            lot = int(float(r.get("lotsize") or 1))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"search answer for {sym} has no usable tick_size/lotsize: {r!r:.200}") from None
        if not (math.isfinite(tick) and tick > 0 and lot >= 1):
            raise ValueError(f"search answer for {sym}: tick_size {tick} / lotsize {lot} out of range")
        br = str(r.get("brsymbol") or "")
        series = br.rsplit("-", 1)[-1] if "-" in br else (old.series if old else "EQ")
        found[sym] = Instrument(sym, str(r.get("name") or (old.name if old else sym)), series, lot, tick,
                                str(r.get("isin") or (old.isin if old else "")))
    stamp = now().strftime("%Y-%m-%d %H:%M UTC")
    header = _provenance(f"OpenAlgo /api/v1/search at {url} for {len(symbols)} symbol(s), on top of: "
                         + _previous_source(master.header), stamp)
    return InstrumentMaster(found.values(), header), missing


def _previous_source(header: Sequence[str]) -> str:
    """The earlier file's Source (with its continuation lines), without earlier refreshes stacked on it."""
    parts: list[str] = []
    for line in header:
        if line.startswith("# Source: "):
            parts = [line[len("# Source: "):]]
        elif parts and line.startswith("#   ") and not line.startswith("#   python"):
            parts.append(line[4:])
        elif parts:
            break
    return " ".join(parts).split(", on top of: ")[-1] if parts else "an earlier file"


def http_searcher(url: str, api_key: str, rate_per_s: float = 8.0, timeout_s: float = 15.0) -> Searcher:
    """POST /api/v1/search at `url`, paced under OpenAlgo's default 10/s limit; any failure raises."""
    import requests

    session = requests.Session()
    gap = 1.0 / rate_per_s
    last = [0.0]

    def search(query: str) -> list[dict]:
        wait = last[0] + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last[0] = time.monotonic()
        r = session.post(f"{url.rstrip('/')}/api/v1/search",
                         json={"apikey": api_key, "query": query, "exchange": EXCHANGE}, timeout=timeout_s)
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"search {query!r} at {url}: HTTP {r.status_code} "
                               f"{body.get('message', r.text[:120]) if isinstance(body, dict) else ''}")
        return list(body.get("data") or [])

    return search


def _env(name: str) -> str:
    val = (os.environ.get(name) or "").strip()
    if val:
        return val
    env = Path(__file__).resolve().parent.parent / ".env"
    if env.exists():
        from dotenv import dotenv_values
        return (dotenv_values(env).get(name) or "").strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paper.instruments", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("refresh", help="re-read every symbol (or --symbols) from an OpenAlgo server's search")
    r.add_argument("--url", default=None, help="OpenAlgo server (default HOST_SERVER from the environment or .env)")
    r.add_argument("--symbols", default=None, help="comma-separated symbols to ask about (default: all in the file)")
    r.add_argument("--rate", type=float, default=8.0, help="search calls per second (default 8; OpenAlgo allows 10)")
    f = sub.add_parser("from-fyers", help="rebuild the file from Fyers' NSE_CM.csv")
    f.add_argument("source", help="a downloaded NSE_CM.csv")
    for s in (r, f):
        s.add_argument("--file", default=str(DEFAULT_FILE), help=f"instrument file (default {DEFAULT_FILE.name})")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = Path(args.file)
    try:
        if args.cmd == "from-fyers":
            src = Path(args.source)
            try:
                text = src.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                print(f"instruments: cannot read {src}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
                return EXIT_USAGE
            master = from_fyers(text, src.name)
            write(target, master)
            print(f"instruments: wrote {len(master)} symbols to {target}")
            return EXIT_OK
        master = load(target) if target.exists() else InstrumentMaster()
        url, key = args.url or _env("HOST_SERVER"), _env("APP_KEY")
        if not url:
            print("instruments: no server: give --url or set HOST_SERVER in .env", file=sys.stderr)
            return EXIT_USAGE
        if not key:
            print("instruments: APP_KEY is not set (environment or .env): the OpenAlgo API key is needed",
                  file=sys.stderr)
            return EXIT_USAGE
        if not args.rate > 0:
            print(f"instruments: --rate {args.rate} must be positive", file=sys.stderr)
            return EXIT_USAGE
        symbols = ([s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols
                   else sorted(master.by_symbol))
        if not symbols:
            print(f"instruments: nothing to ask about: {target} lists no symbol and --symbols is empty",
                  file=sys.stderr)
            return EXIT_USAGE
        log.info("asking %s about %d symbol(s), %.0f a second", url, len(symbols), args.rate)
        new, missing = refresh(master, symbols, http_searcher(url, key, args.rate), url)
    except InstrumentFileError as e:
        print(f"instruments: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - a server or network failure: say it in one line, write nothing
        print(f"instruments: refresh failed, {target} left as it was: {e}", file=sys.stderr)
        return EXIT_ERROR
    changed = sum(1 for s, i in new.by_symbol.items() if master.by_symbol.get(s) != i)
    write(target, new)
    print(f"instruments: {len(new)} symbols in {target}; {changed} new or changed"
          + (f"; not known to the server, dropped: {', '.join(missing)}" if missing else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
