"""OpenAlgo symbol names <-> Fyers tickers.

The daemon receives Fyers tickers (`NSE:SBIN-EQ`) from the data socket but must send OpenAlgo names
(`SBIN` on exchange `NSE`) to OpenAlgo. Cash equities follow a fixed rule; anything else (indices, odd
series, a renamed scrip) is given explicitly in config and held in a SymbolMap.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

CASH_EXCHANGES = ("NSE", "BSE")
# Fyers equity series suffixes: the part after the last hyphen is the series, never part of the name
# (BAJAJ-AUTO is `NSE:BAJAJ-AUTO-EQ`).
EQUITY_SERIES = frozenset({"EQ", "BE", "BZ", "BL", "SM", "ST", "GB", "GS", "IL", "IQ", "RR", "TB", "W1", "E1"})
_TICKER_RE = re.compile(r"^([A-Z_]+):(.+)$")


class UnknownSymbol(KeyError):
    """A symbol or ticker that no mapping knows."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown symbol"


def to_fyers(symbol: str, exchange: str = "NSE") -> str:
    """Fyers ticker of a cash-equity OpenAlgo symbol: `SBIN`, `NSE` -> `NSE:SBIN-EQ`."""
    if exchange not in CASH_EXCHANGES:
        raise ValueError(f"no rule maps {symbol!r} on {exchange!r} to a Fyers ticker; give it explicitly")
    if not symbol or ":" in symbol:
        raise ValueError(f"{symbol!r} is not an OpenAlgo symbol (no exchange prefix, no -EQ)")
    return f"{exchange}:{symbol}-EQ"


def to_openalgo(ticker: str) -> tuple[str, str]:
    """OpenAlgo (symbol, exchange) of a Fyers cash-equity ticker: `NSE:SBIN-EQ` -> (`SBIN`, `NSE`)."""
    m = _TICKER_RE.match(ticker or "")
    if not m:
        raise ValueError(f"{ticker!r} is not a Fyers ticker like NSE:SBIN-EQ")
    exchange, rest = m.groups()
    name, sep, series = rest.rpartition("-")
    if exchange not in CASH_EXCHANGES or not sep or series not in EQUITY_SERIES or not name:
        raise ValueError(f"no rule maps Fyers ticker {ticker!r} to OpenAlgo; give the mapping explicitly")
    return name, exchange


class SymbolMap:
    """Explicit (openalgo_symbol, exchange, fyers_ticker) triples, both directions, one-to-one."""

    def __init__(self, triples: Iterable[tuple[str, str, str | None]]):
        self._to_fyers: dict[str, str] = {}
        self._to_oa: dict[str, tuple[str, str]] = {}
        self._exchange: dict[str, str] = {}
        for symbol, exchange, ticker in triples:
            ticker = ticker or to_fyers(symbol, exchange)
            if symbol in self._to_fyers:
                raise ValueError(f"symbol {symbol!r} is listed twice")
            if ticker in self._to_oa:
                raise ValueError(f"Fyers ticker {ticker!r} is mapped from both "
                                 f"{self._to_oa[ticker][0]!r} and {symbol!r}")
            self._to_fyers[symbol] = ticker
            self._to_oa[ticker] = (symbol, exchange)
            self._exchange[symbol] = exchange

    @classmethod
    def from_config(cls, cfg) -> SymbolMap:
        """From core.config.Config: every SymbolSpec on the configured exchange."""
        return cls((s.symbol, cfg.exchange, s.fyers) for s in cfg.symbols)

    def to_fyers(self, symbol: str) -> str:
        try:
            return self._to_fyers[symbol]
        except KeyError:
            raise UnknownSymbol(f"OpenAlgo symbol {symbol!r} is not in the symbol map") from None

    def to_openalgo(self, fyers_ticker: str) -> tuple[str, str]:
        try:
            return self._to_oa[fyers_ticker]
        except KeyError:
            raise UnknownSymbol(f"Fyers ticker {fyers_ticker!r} is not in the symbol map") from None

    def exchange(self, symbol: str) -> str:
        try:
            return self._exchange[symbol]
        except KeyError:
            raise UnknownSymbol(f"OpenAlgo symbol {symbol!r} is not in the symbol map") from None

    def symbols(self) -> list[str]:
        return list(self._to_fyers)

    def fyers_tickers(self) -> list[str]:
        return list(self._to_oa)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._to_fyers

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return ((s, self._exchange[s], t) for s, t in self._to_fyers.items())

    def __len__(self) -> int:
        return len(self._to_fyers)
