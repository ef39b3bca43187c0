"""Option quotes from index quotes, and the engine's rules for option orders (lots, freeze, full premium).

The paper broker receives index quotes only (NIFTY on NSE_INDEX). The desk turns one into a quote for any
listed option: Black-Scholes at the smile's volatility, rounded to the tick, with a bid and ask spread_ticks
apart around it; MARKET orders then fill the way equity ones do (a buy at the ask, a sell at the bid). A
derived quote carries the index quote's timestamp and is a pure function of it, so a replayed day prices
identically. The engine asks the desk (paper.engine.Derivatives) before it places an order on an options
exchange and, on every index quote, for fresh quotes of the contracts it holds positions or live orders in.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import date
from datetime import time as dtime

from core.clock import ist_date, ist_epoch
from paper.errors import analyze_error
from paper.market import Quote, QuoteBook
from paper.options.contracts import Contract, OptionsBook, Underlying
from paper.options.pricing import DAYS_PER_YEAR, bs_price

log = logging.getLogger(__name__)

EXPIRY_TIME = dtime(15, 30)          # NFO contracts expire at the close (OpenAlgo's default expiry cut-off)
YEAR_S = DAYS_PER_YEAR * 86400.0


def expiry_epoch(d: date) -> float:
    return float(ist_epoch(d, EXPIRY_TIME))


def years_to_expiry(d: date, t: float) -> float:
    return (expiry_epoch(d) - t) / YEAR_S


def _floor_tick(x: float, tick: float) -> float:
    return round(math.floor(x / tick + 1e-9) * tick, 2)


def _round_tick(x: float, tick: float) -> float:
    return round(math.floor(x / tick + 0.5) * tick, 2)


class OptionsDesk:
    """Prices the listed options and enforces their order rules; knows nothing of orders or money itself."""

    def __init__(self, book: OptionsBook):
        self.book = book
        self.quote_exchanges = frozenset(u.quote_exchange for u in book.underlyings.values())
        self._by_quote = {(u.name, u.quote_exchange): u for u in book.underlyings.values()}

    # ------------------------------------------------------------ pricing

    def model_price(self, c: Contract, u: Underlying, spot: float, t: float) -> float:
        """Black-Scholes value of `c` at spot `spot` and epoch `t` (intrinsic once expired)."""
        years = years_to_expiry(c.expiry, t)
        vol = u.smile.vol(spot, c.strike)
        return bs_price(spot, c.strike, max(years, 0.0), u.rate, vol, c.is_call)

    def option_quote(self, c: Contract, u: Underlying, index: Quote) -> Quote:
        """The option's quote at the index quote's time: LTP on the tick (never below one tick), bid and ask
        spread_ticks apart around it."""
        tick = u.tick_size
        value = self.model_price(c, u, index.ltp, index.ts)
        ltp = max(tick, _round_tick(value, tick))
        spread = u.spread_ticks * tick
        bid = max(tick, _floor_tick(value - spread / 2.0, tick))
        ask = round(bid + spread, 2)
        ltp = min(max(ltp, bid), ask)
        return Quote(c.symbol, u.exchange, index.ts, ltp, bid, ask)

    def index_quote(self, u: Underlying, quotes: QuoteBook) -> Quote | None:
        return quotes.current.get((u.name, u.quote_exchange))

    # ------------------------------------------------------------ the engine's hook (paper.engine.Derivatives)

    def prepare(self, symbol: str, exchange: str, quantity: int, t: float, quotes: QuoteBook) -> bool:
        """Check an order's quantity against the contract's lot and freeze quantity and put its current model
        quote in `quotes`. False when `symbol` is not a listed option (the engine then applies its own rules)."""
        found = self.book.contract(symbol, exchange, ist_date(t))
        if found is None:
            return False
        c, u = found
        self.check_quantity(c, u, quantity)
        index = self.index_quote(u, quotes)
        if index is not None:
            quotes.offer(self.option_quote(c, u, index))
        return True

    def check_quantity(self, c: Contract, u: Underlying, quantity: int) -> None:
        if quantity % u.lot_size:
            raise analyze_error(400, f"Quantity must be in multiples of lot size {u.lot_size}")
        if quantity > u.freeze_qty:
            raise analyze_error(400, f"Quantity {quantity} exceeds the freeze quantity {u.freeze_qty} of "
                                     f"{c.underlying} options: the exchange rejects larger orders; split it into "
                                     f"orders of at most {u.freeze_qty // u.lot_size * u.lot_size} "
                                     f"({u.freeze_qty // u.lot_size} lots of {u.lot_size})")

    def quantity_rule(self, symbol: str, exchange: str, quantity: int, t: float) -> None:
        """The lot and freeze check alone (a modify changes the quantity of a placed order)."""
        found = self.book.contract(symbol, exchange, ist_date(t))
        if found is not None:
            self.check_quantity(found[0], found[1], quantity)

    def leverage(self, symbol: str, exchange: str) -> float | None:
        """1 for a listed option (the premium is paid in full, the sandbox's option leverage); None otherwise."""
        found = self.book.contract(symbol, exchange, date.min)
        return 1.0 if found is not None else None

    def derived(self, index: Quote, held: Iterable[tuple[str, str]]) -> list[Quote]:
        """Fresh quotes, from this index quote, for the option contracts in `held` written on its index."""
        u = self._by_quote.get(index.key)
        if u is None:
            return []
        out = []
        for symbol, exchange in held:
            if exchange != u.exchange or not symbol.startswith(u.name):
                continue
            found = self.book.contract(symbol, exchange, date.min)
            if found is not None and found[1] is u:
                out.append(self.option_quote(found[0], u, index))
        return out
