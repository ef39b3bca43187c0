"""OpenAlgo's options endpoints on the paper broker: expiry, optionsymbol, optionchain, optionsorder, optiongreeks.

Request schemas, response shapes and error texts follow OpenAlgo (restx_api/data_schemas.py, schemas.py and
services/expiry_service.py, option_symbol_service.py, option_chain_service.py, place_options_order_service.py,
option_greeks_service.py). The underlying's LTP is the index quote the broker was pushed; option prices come
from paper.options.desk. Deliberate differences: the master contract is the shipped tables (any strike on the
grid of a listed expiry exists; chains list strikes_each_side strikes around the at-the-money one); an
optionsorder offset that is not ATM/ITMn/OTMn gets optionsymbol's validation message; chain and order greeks are
computed at the broker's clock (server_ts is that clock); bid_qty, ask_qty, volume and oi of option quotes are 0
(the model has no order book).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.clock import ist_date
from paper.errors import ApiError
from paper.market import Quote
from paper.options.contracts import (
    OFFSET_RE,
    Contract,
    Underlying,
    atm_strike,
    expiry_label,
    labels,
    offset_strike,
    option_symbol,
    parse_expiry_code,
    parse_symbol,
    split_underlying,
)
from paper.options.desk import OptionsDesk, expiry_epoch, years_to_expiry
from paper.options.pricing import DAYS_PER_YEAR, black76_greeks, black76_iv, intrinsic
from paper.schemas import APIKEY, EXCHANGE, PRICETYPES, Field
from paper.schemas import Schema as _Schema
from paper.service import MODE, SPLIT_MAX_ORDERS, PaperBroker

log = logging.getLogger(__name__)

FO_EXCHANGES = ("NFO", "BFO", "MCX", "CDS", "NCO", "BCD", "NCDEX", "CRYPTO")
OFFSET_ERROR = "Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"
NSE_INDEXES = ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "INDIAVIX")
BSE_INDEXES = ("SENSEX", "BANKEX", "SENSEX50")
MIN_YEARS = 0.0001   # OpenAlgo's floor on time to expiry (about an hour)


@dataclass(frozen=True)
class Schema(_Schema):
    """OpenAlgo's options routes answer a schema failure as {"status","message": title, "errors": {...}}."""

    title: str | None = None          # None: the errors dict is the message (the expiry route)
    check_offset: bool = False        # optionsymbol validates the offset in its schema (optionsorder does not)

    def load(self, data: Any) -> dict[str, Any]:
        try:
            out = super().load(data)
        except ApiError as e:
            if self.title is None:
                raise
            raise ApiError(400, {"status": "error", "message": self.title, "errors": e.body["message"]}) from None
        if self.check_offset and OFFSET_RE.match(out["offset"].upper()) is None:
            raise ApiError(400, {"status": "error", "message": self.title, "errors": {"offset": [OFFSET_ERROR]}})
        return out


def _s(required: bool = True, **kw: Any) -> Field:
    return Field("str", required=required, **kw)


OPTION_TYPE = _s(choices=("CE", "PE", "ce", "pe"))
STRIKE_INT = Field("int", allow_none=True, min=1)
EXPIRY = Schema({"apikey": APIKEY, "symbol": _s(), "exchange": _s(choices=FO_EXCHANGES),
                 "instrumenttype": _s(choices=("futures", "options"))}, repr_message=False)
OPTION_SYMBOL = Schema({"apikey": APIKEY, "strategy": _s(False, allow_none=True), "underlying": _s(),
                        "exchange": EXCHANGE, "expiry_date": _s(False), "strike_int": STRIKE_INT, "offset": _s(),
                        "option_type": OPTION_TYPE}, repr_message=False, title="Validation error",
                       check_offset=True)
OPTION_CHAIN = Schema({"apikey": APIKEY, "underlying": _s(), "exchange": EXCHANGE, "expiry_date": _s(),
                       "strike_count": Field("int", allow_none=True, min=1, max=100),
                       "with_greeks": Field("bool", default=False),
                       "interest_rate": Field("float", allow_none=True, min=0, max=100)}, repr_message=False,
                      title="Validation error")
OPTIONS_ORDER = Schema({
    "apikey": APIKEY, "strategy": _s(), "underlying": _s(), "exchange": EXCHANGE, "expiry_date": _s(False),
    "strike_int": STRIKE_INT, "offset": _s(), "option_type": OPTION_TYPE,
    "action": _s(choices=("BUY", "SELL", "buy", "sell")),
    "quantity": Field("int", required=True, min=1, range_error="Quantity must be a positive integer."),
    "splitsize": Field("int", default=0, allow_none=True, min=0,
                       range_error="Split size must be a non-negative integer."),
    "pricetype": _s(False, default="MARKET", choices=PRICETYPES),
    "product": _s(False, default="MIS", choices=("MIS", "NRML")),
    "price": Field("float", default=0.0, min=0, range_error="Price must be a non-negative number."),
    "trigger_price": Field("float", default=0.0, min=0, range_error="Trigger price must be a non-negative number."),
    "disclosed_quantity": Field("int", default=0, min=0,
                                range_error="Disclosed quantity must be a non-negative integer."),
}, repr_message=False, title="Validation error")
OPTION_GREEKS = Schema({"apikey": APIKEY, "symbol": _s(), "exchange": _s(choices=FO_EXCHANGES),
                        "interest_rate": Field("float", min=0, max=100), "forward_price": Field("float", min=0),
                        "underlying_symbol": _s(False), "underlying_exchange": _s(False), "expiry_time": _s(False)},
                       repr_message=False, title="Validation failed")


def _error(status: int, message: str) -> ApiError:
    return ApiError(status, {"status": "error", "message": message})


def _desk(b: PaperBroker) -> OptionsDesk:
    d = b.engine.derivatives
    if not isinstance(d, OptionsDesk):
        raise _error(404, "Options are not enabled on this paper broker")
    return d


def _r(x: float, n: int) -> float:
    return round(x, n) + 0.0


# ---------------------------------------------------------------- expiry

def expiry(b: PaperBroker, d: dict[str, Any]) -> dict[str, Any]:
    symbol, exchange, kind = d["symbol"].strip().upper(), d["exchange"].strip().upper(), d["instrumenttype"]
    if not symbol:
        raise _error(400, "Symbol parameter is required and cannot be empty")
    desk = _desk(b)
    with b.engine.lock:
        today = ist_date(b.engine.now())
    u = desk.book.underlying(symbol)
    dates: list[date] = []
    if u is not None and u.exchange == exchange:
        # index futures expire with the monthly options; the paper broker lists them but does not trade them
        dates = desk.book.listed_expiries(symbol, today, "monthly" if kind == "futures" else None)
    if not dates:
        return {"status": "success", "message": f"No expiry dates found for {symbol} {kind} in {exchange}", "data": []}
    return {"status": "success", "message": f"Found {len(dates)} expiry dates for {symbol} {kind} in {exchange}",
            "data": [expiry_label(x) for x in dates]}


# ---------------------------------------------------------------- resolution (optionsymbol, optionsorder)

@dataclass(frozen=True)
class Resolved:
    contract: Contract
    underlying: Underlying
    ltp: float


def _quote_exchange(base: str, exchange: str) -> str:
    """OpenAlgo's mapping: an options exchange given for an index means its index quote."""
    if exchange in ("NFO", "BFO"):
        if base in NSE_INDEXES:
            return "NSE_INDEX"
        if base in BSE_INDEXES:
            return "BSE_INDEX"
        return "NSE" if exchange == "NFO" else "BSE"
    return exchange


def _options_exchange(quote_exchange: str) -> str:
    return {"NSE": "NFO", "NSE_INDEX": "NFO", "BSE": "BFO", "BSE_INDEX": "BFO"}.get(quote_exchange, quote_exchange)


def _underlying_ltp(b: PaperBroker, symbol: str, exchange: str) -> tuple[float, Quote]:
    try:
        q = b._quote(symbol, exchange, "Failed to fetch quotes")
    except ApiError as e:
        raise _error(e.http_status, f"Failed to fetch LTP for {symbol}. {e.body.get('message')}") from None
    return q.ltp, q


def _no_strikes(base: str, code: str) -> ApiError:
    return _error(404, f"No strikes found for {base} expiring {code}. Please check expiry date or update master "
                       "contract.")


def _listed(desk: OptionsDesk, base: str, code: str, options_exchange: str, today: date
            ) -> tuple[Underlying, date] | None:
    u = desk.book.underlying(base)
    d = parse_expiry_code(code)
    if u is None or u.exchange != options_exchange or d is None or d not in desk.book.listed_expiries(base, today):
        return None
    return u, d


def resolve(b: PaperBroker, d: dict[str, Any]) -> Resolved:
    """OpenAlgo's get_option_symbol on the paper broker's tables; caller holds the engine lock."""
    desk = _desk(b)
    base, embedded = split_underlying(d["underlying"])
    code = d.get("expiry_date") or embedded
    if not code:
        raise _error(400, "Expiry date required. Provide via expiry_date parameter or embed in underlying "
                          "(e.g., NIFTY28OCT25FUT).")
    code = code.upper()
    qx = _quote_exchange(base, d["exchange"].upper())
    ltp, _ = _underlying_ltp(b, base, qx)
    ox = _options_exchange(qx)
    today = ist_date(b.engine.now())
    listed = _listed(desk, base, code, ox, today)
    offset, otype = d["offset"], d["option_type"].upper()
    strike_int = d.get("strike_int")
    if strike_int is None:
        if listed is None:
            raise _no_strikes(base, code)
        strikes = desk.book.strikes(listed[0], ltp)
        target = offset_strike(atm_strike(ltp, strikes), offset, otype, strikes)
        if target is None:
            raise _error(400, f"Offset {offset} is out of range for available strikes. Please use a smaller offset.")
    else:
        atm = round(ltp / strike_int) * strike_int
        m = OFFSET_RE.match(offset.upper())
        if m is None:
            raise _error(400, f"Invalid offset: {offset.upper()}")
        n = 0 if m.group(1) == "ATM" else int(m.group(3))
        lower = (m.group(2) == "ITM") == (otype == "CE")
        target = float(atm - n * strike_int if lower else atm + n * strike_int)
    symbol = option_symbol(base, code, target, otype)
    found = desk.book.contract(symbol, ox, today)
    if found is None:
        raise _error(404, f"Option symbol {symbol} not found in {ox}. Symbol may not exist or master contract needs "
                          "update.")
    return Resolved(found[0], found[1], ltp)


def option_symbol_route(b: PaperBroker, d: dict[str, Any]) -> dict[str, Any]:
    with b.engine.lock:
        r = resolve(b, d)
    u = r.underlying
    return {"status": "success", "symbol": r.contract.symbol, "exchange": u.exchange, "lotsize": u.lot_size,
            "tick_size": u.tick_size, "freeze_qty": u.freeze_qty, "underlying_ltp": r.ltp}


# ---------------------------------------------------------------- optionsorder

def options_order(b: PaperBroker, d: dict[str, Any]) -> dict[str, Any]:
    """Resolve the contract, then place it through the engine like placeorder (split when splitsize > 0)."""
    if OFFSET_RE.match(d["offset"].upper()) is None:
        raise _error(400, OFFSET_ERROR)

    def go() -> dict[str, Any]:
        e = b.engine
        r = resolve(b, d)
        order = {"strategy": d["strategy"], "exchange": r.underlying.exchange, "symbol": r.contract.symbol,
                 "action": d["action"], "pricetype": d["pricetype"], "product": d["product"], "price": d["price"],
                 "trigger_price": d["trigger_price"], "disclosed_quantity": d["disclosed_quantity"]}
        head = {"status": "success", "symbol": r.contract.symbol, "exchange": r.underlying.exchange,
                "underlying": d["underlying"], "underlying_ltp": r.ltp, "offset": d["offset"],
                "option_type": d["option_type"].upper()}
        size, total = d.get("splitsize") or 0, d["quantity"]
        if size <= 0:
            o = e.place({**order, "quantity": total}, e.now())
            return {**head, "orderid": o["orderid"], **MODE}
        parts = [size] * (total // size) + ([total % size] if total % size else [])
        if len(parts) > SPLIT_MAX_ORDERS:
            raise _error(400, f"Total number of orders would exceed maximum limit of {SPLIT_MAX_ORDERS}")
        results = []
        for n, qty in enumerate(parts, start=1):
            try:
                o = e.place({**order, "quantity": qty}, e.now())
                results.append({"order_num": n, "quantity": qty, "status": "success", "orderid": o["orderid"]})
            except ApiError as err:
                results.append({"order_num": n, "quantity": qty, "status": "error",
                                "message": err.body.get("message") or "Failed to place order"})
        return {**head, "total_quantity": total, "split_size": size, "results": results, **MODE}
    result: dict[str, Any] = b._run(go)
    return result


# ---------------------------------------------------------------- optionchain

def _leg(desk: OptionsDesk, c: Contract, u: Underlying, index: Quote, label: str) -> dict[str, Any]:
    q = desk.option_quote(c, u, index)
    return {"symbol": c.symbol, "label": label, "ltp": q.ltp, "bid": q.bid, "ask": q.ask, "bid_qty": 0,
            "ask_qty": 0, "open": 0, "high": 0, "low": 0, "prev_close": 0, "volume": 0, "oi": 0,
            "lotsize": u.lot_size, "tick_size": u.tick_size}


def option_chain(b: PaperBroker, d: dict[str, Any]) -> dict[str, Any]:
    desk = _desk(b)
    with b.engine.lock:
        e = b.engine
        base, embedded = split_underlying(d["underlying"])
        code = (embedded or d["expiry_date"]).upper()
        if not code:
            raise _error(400, "Expiry date is required.")
        qx = _quote_exchange(base, d["exchange"].upper())
        try:
            index = b._quote(base, qx, "Failed to fetch quotes")
        except ApiError as err:
            raise _error(err.http_status, f"Failed to fetch LTP for {base}: {err.body.get('message')}") from None
        now = e.now()
        listed = _listed(desk, base, code, _options_exchange(qx), ist_date(now))
    if listed is None:
        raise _no_strikes(base, code)
    u, exp = listed
    strikes = desk.book.strikes(u, index.ltp)
    atm = atm_strike(index.ltp, strikes)
    i, n = strikes.index(atm), d.get("strike_count")
    shown = strikes if n is None else strikes[max(0, i - n): i + n + 1]
    chain: list[dict[str, Any]] = []
    for k in shown:
        ce_label, pe_label = labels(k, atm, strikes)
        chain.append({"strike": k,
                      "ce": _leg(desk, Contract(base, exp, k, "CE"), u, index, ce_label),
                      "pe": _leg(desk, Contract(base, exp, k, "PE"), u, index, pe_label)})
    forward = None
    if d.get("with_greeks"):
        forward = _parity_forward(chain, atm, index.ltp)
        years = years_to_expiry(exp, now)
        if years > 0:
            rate = (d.get("interest_rate") or 0.0) / 100.0
            for row in chain:
                for side in ("ce", "pe"):
                    g = _greeks(row[side]["ltp"], forward, row["strike"], max(years, MIN_YEARS), rate, side == "ce")
                    if g is not None:
                        row[side].update({"implied_volatility": g["iv"], "delta": g["delta"], "gamma": g["gamma"],
                                          "theta": g["theta"], "vega": g["vega"]})
    return {"status": "success", "underlying": base, "underlying_symbol": base, "underlying_exchange": qx,
            "underlying_ltp": index.ltp, "underlying_prev_close": index.prev_close, "expiry_date": code,
            "expiry_ts": int(expiry_epoch(exp)), "server_ts": int(now), "atm_strike": atm, "quotes_included": True,
            "greeks_included": bool(d.get("with_greeks")), "forward_price": forward, "chain": chain}


def _parity_forward(chain: list[dict[str, Any]], atm: float, spot: float) -> float:
    """F = K + C - P at the at-the-money strike (OpenAlgo's synthetic future); the spot when unpriced."""
    for row in chain:
        if row["strike"] == atm and row["ce"]["ltp"] > 0 and row["pe"]["ltp"] > 0:
            return float(round(atm + row["ce"]["ltp"] - row["pe"]["ltp"], 4))
    return spot


def _greeks(price: float, forward: float, strike: float, years: float, rate: float, is_call: bool
            ) -> dict[str, float] | None:
    iv = black76_iv(price, forward, strike, years, rate, is_call)
    if iv is None:
        return None
    g = black76_greeks(forward, strike, years, rate, iv, is_call)
    return {"iv": _r(iv * 100.0, 2), "delta": _r(g.delta, 4), "gamma": _r(g.gamma, 6), "theta": _r(g.theta, 4),
            "vega": _r(g.vega, 4), "rho": _r(g.rho, 6)}


# ---------------------------------------------------------------- optiongreeks

def option_greeks(b: PaperBroker, d: dict[str, Any]) -> dict[str, Any]:
    """OpenAlgo's optiongreeks: Black-76 on the parity forward of the contract's expiry (or forward_price)."""
    desk = _desk(b)
    symbol, exchange = d["symbol"], d["exchange"]
    c = parse_symbol(symbol.upper())
    if c is None:
        raise _error(400, f"Failed to parse option symbol {symbol}: Invalid option symbol format: {symbol}")
    with b.engine.lock:
        now = b.engine.now()
        found = desk.book.contract(symbol, exchange, date.min)
        ux = d.get("underlying_exchange") or (found[1].quote_exchange if found is not None
                                              else _quote_exchange(c.underlying, exchange))
        us = d.get("underlying_symbol") or c.underlying
        index: Quote | None = None
        if not d.get("forward_price") or found is not None:
            try:
                index = b._quote(us, ux, "Failed to fetch quotes")
            except ApiError as err:
                if not d.get("forward_price"):
                    raise _error(err.http_status, f"Failed to fetch underlying price: {err.body.get('message')}") \
                        from None
        if found is None:
            try:
                b._quote(symbol, exchange, "Failed to fetch quotes")
            except ApiError as err:
                raise _error(err.http_status, f"Failed to fetch option price: {err.body.get('message')}") from None
            raise _error(404, "Option LTP not available")
    u = found[1]
    if index is None:
        raise _error(404, "Option LTP not available")  # no index quote: the option has no model price either
    years = years_to_expiry(c.expiry, now)
    if years <= 0:
        raise _error(400, f"Option has expired on {c.expiry:%d-%b-%Y}")
    years = max(years, MIN_YEARS)
    price = desk.option_quote(c, u, index).ltp
    if d.get("forward_price"):
        forward = float(d["forward_price"])
    else:
        atm = atm_strike(index.ltp, desk.book.strikes(u, index.ltp))
        call = desk.option_quote(Contract(c.underlying, c.expiry, atm, "CE"), u, index).ltp
        put = desk.option_quote(Contract(c.underlying, c.expiry, atm, "PE"), u, index).ltp
        forward = round(atm + call - put, 4)
    rate_pct = float(d.get("interest_rate") or 0.0)
    head = {"status": "success", "symbol": symbol, "exchange": exchange, "underlying": c.underlying,
            "strike": _r(c.strike, 2), "option_type": c.option_type,
            "expiry_date": f"{c.expiry:%d-%b-%Y}", "days_to_expiry": _r(years * DAYS_PER_YEAR, 4),
            "spot_price": _r(forward, 2), "option_price": _r(price, 2)}
    value = intrinsic(forward, c.strike, c.is_call)
    time_value = price - value
    g = None if time_value <= 0 or (value > 0 and time_value < 0.01) else \
        _greeks(price, forward, c.strike, years, rate_pct / 100.0, c.is_call)
    if g is None:  # no time value to invert: OpenAlgo's theoretical deep-ITM answer
        note = ("Deep ITM option with no time value - theoretical Greeks returned"
                if time_value <= 0 or (value > 0 and time_value < 0.01)
                else "IV calculation not possible - theoretical deep ITM Greeks returned")
        return {**head, "intrinsic_value": _r(value, 2), "time_value": _r(max(time_value, 0.0), 2),
                "interest_rate": _r(rate_pct, 2), "implied_volatility": 0,
                "greeks": {"delta": 1.0 if c.is_call else -1.0, "gamma": 0, "theta": 0, "vega": 0, "rho": 0},
                "note": note}
    return {**head, "interest_rate": _r(rate_pct, 2), "implied_volatility": g["iv"],
            "greeks": {k: g[k] for k in ("delta", "gamma", "theta", "vega", "rho")}}


def refresh_quote(b: PaperBroker, symbol: str, exchange: str) -> None:
    """Before a quotes/depth call on a listed option: its model quote from the current index quote."""
    d = b.engine.derivatives
    if isinstance(d, OptionsDesk) and exchange in FO_EXCHANGES:
        with b.engine.lock:
            found = d.book.contract(symbol, exchange, date.min)
            if found is not None:
                index = d.index_quote(found[1], b.engine.book)
                if index is not None:
                    b.engine.book.offer(d.option_quote(found[0], found[1], index))

