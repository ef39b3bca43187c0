"""Request validation with OpenAlgo's rules and messages (its marshmallow schemas, default unknown=RAISE).

Only the behaviour a client can observe is reproduced: which fields are required, which values pass,
numbers accepted as JSON numbers or strings, the exact error texts, the order errors are listed in, and the
two shapes of the 400 body (the Python repr of the error dict for order routes, the dict for the others).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paper.errors import ApiError

VALID_EXCHANGES = ("NSE", "NFO", "CDS", "BSE", "BFO", "BCD", "MCX", "NCDEX", "NCO", "NSE_INDEX", "BSE_INDEX",
                   "MCX_INDEX", "GLOBAL_INDEX", "CRYPTO")
CRYPTO_EXCHANGES = ("CRYPTO",)
ACTIONS = ("BUY", "SELL", "buy", "sell")
PRICETYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("MIS", "NRML", "CNC")

_MISSING = object()
# True == 1 and False == 0 (same hash), so the numbers 1 and 0 match these sets too
_TRUTHY = {True, "t", "T", "true", "True", "TRUE", "on", "On", "ON", "y", "Y", "yes", "Yes", "YES", "1"}
_FALSY = {False, "f", "F", "false", "False", "FALSE", "off", "Off", "OFF", "n", "N", "no", "No", "NO", "0"}


class _Invalid(Exception):
    def __init__(self, messages: Any):
        self.messages = messages


@dataclass(frozen=True)
class Field:
    kind: str                                   # str, float, int, bool, list
    required: bool = False
    default: Any = _MISSING
    allow_none: bool = False
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    range_error: str | None = None
    min_len: int | None = None
    max_len: int | None = None
    len_error: str | None = None
    item: dict[str, Field] | None = None      # list of nested objects

    def load(self, value: Any) -> Any:
        if value is None:
            if self.allow_none:
                return None
            raise _Invalid(["Field may not be null."])
        v = _DESERIALIZERS[self.kind](self, value)
        errors: list[str] = []
        if self.choices is not None and v not in self.choices:
            errors.append(f"Must be one of: {', '.join(self.choices)}.")
        if self.min is not None or self.max is not None:
            low_bad = self.min is not None and (v < self.min if self.min_inclusive else v <= self.min)
            high_bad = self.max is not None and v > self.max
            if low_bad or high_bad:
                errors.append(self.range_error or _range_message(self))
        if self.min_len is not None or self.max_len is not None:
            n = len(v)
            if (self.min_len is not None and n < self.min_len) or (self.max_len is not None and n > self.max_len):
                errors.append(self.len_error or f"Length must be between {self.min_len} and {self.max_len}.")
        if errors:
            raise _Invalid(errors)
        return v


def _range_message(f: Field) -> str:
    lo = "greater than or equal to" if f.min_inclusive else "greater than"
    if f.min is not None and f.max is not None:
        return f"Must be {lo} {_fmt(f.min)} and less than or equal to {_fmt(f.max)}."
    if f.min is not None:
        return f"Must be {lo} {_fmt(f.min)}."
    return f"Must be less than or equal to {_fmt(f.max)}."


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _load_str(f: Field, v: Any) -> str:
    if not isinstance(v, str):
        raise _Invalid(["Not a valid string."])
    return v


def _load_float(f: Field, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _Invalid(["Not a valid number."])
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise _Invalid(["Not a valid number."]) from None
    if math.isnan(x) or math.isinf(x):
        raise _Invalid(["Special numeric values (nan or infinity) are not permitted."])
    return x


def _load_int(f: Field, v: Any) -> int:
    if isinstance(v, bool):
        raise _Invalid(["Not a valid integer."])
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise _Invalid(["Not a valid integer."])


def _load_bool(f: Field, v: Any) -> bool:
    try:
        if v in _TRUTHY:
            return True
        if v in _FALSY:
            return False
    except TypeError:  # unhashable
        pass
    raise _Invalid(["Not a valid boolean."])


def _load_list(f: Field, v: Any) -> list:
    if not isinstance(v, list):
        raise _Invalid(["Not a valid list."])
    out, errors = [], {}
    for i, item in enumerate(v):
        try:
            out.append(_load_object(f.item or {}, item))
        except _Invalid as e:
            errors[i] = e.messages
    if errors:
        raise _Invalid(errors)
    return out


_DESERIALIZERS: dict[str, Callable[[Field, Any], Any]] = {
    "str": _load_str, "float": _load_float, "int": _load_int, "bool": _load_bool, "list": _load_list}


def _load_object(schema: dict[str, Field], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Invalid({"_schema": ["Invalid input type."]})
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, f in schema.items():
        if name not in data:
            if f.required:
                errors[name] = ["Missing data for required field."]
            elif f.default is not _MISSING:
                out[name] = f.default
            continue
        try:
            out[name] = f.load(data[name])
        except _Invalid as e:
            errors[name] = e.messages
    for name in data:
        if name not in schema:
            errors[name] = ["Unknown field."]
    if errors:
        raise _Invalid(errors)
    return out


def _coerce_quantity(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("exchange") not in CRYPTO_EXCHANGES and "quantity" in data:
        q = data["quantity"]
        if q != int(q):
            raise _Invalid({"quantity": [f"Fractional quantity ({q}) is not allowed for non-crypto exchanges."]})
        data["quantity"] = int(q)
    return data


@dataclass(frozen=True)
class Schema:
    fields: dict[str, Field]
    repr_message: bool                     # order routes: message is str(errors); others: the dict itself
    post_load: Callable[[dict], dict] | None = None
    analyze: bool = False                  # the 400 carries "mode":"analyze" (basket and split in analyzer mode)

    def load(self, data: Any) -> dict[str, Any]:
        try:
            out = _load_object(self.fields, data)
            return self.post_load(out) if self.post_load else out
        except _Invalid as e:
            msg = str(e.messages) if self.repr_message else e.messages
            body = {"status": "error", "message": msg}
            raise ApiError(400, {"mode": "analyze", **body} if self.analyze else body) from None


# ---------------------------------------------------------------- field helpers and the schemas

def _s(required: bool = True, **kw: Any) -> Field:
    return Field("str", required=required, **kw)


APIKEY = _s(min_len=1, max_len=256)
APIKEY_PLAIN = _s()
STRATEGY = _s()
EXCHANGE = _s(choices=VALID_EXCHANGES)
ACTION = _s(choices=ACTIONS)
PRICE = Field("float", default=0.0, min=0, range_error="Price must be a non-negative number.")
TRIGGER = Field("float", default=0.0, min=0, range_error="Trigger price must be a non-negative number.")
DISCLOSED = Field("int", default=0, min=0, range_error="Disclosed quantity must be a non-negative integer.")
POS_QTY = Field("float", required=True, min=0, min_inclusive=False, range_error="Quantity must be a positive number.")


def _req(f: Field) -> Field:
    return Field(**{**f.__dict__, "required": True, "default": _MISSING})


ORDER = Schema({
    "apikey": APIKEY, "strategy": STRATEGY, "exchange": EXCHANGE, "symbol": _s(), "action": ACTION,
    "quantity": POS_QTY,
    "pricetype": _s(False, default="MARKET", choices=PRICETYPES), "product": _s(False, default="MIS", choices=PRODUCTS),
    "price": PRICE, "trigger_price": TRIGGER, "disclosed_quantity": DISCLOSED,
    "underlying_ltp": Field("float", default=None, allow_none=True),
}, repr_message=True, post_load=_coerce_quantity)

SMART_ORDER = Schema({
    "apikey": APIKEY, "strategy": STRATEGY, "exchange": EXCHANGE, "symbol": _s(), "action": ACTION,
    "quantity": Field("float", required=True, min=0, range_error="Quantity must be a non-negative number."),
    "position_size": Field("float", required=True),
    "pricetype": _s(False, default="MARKET", choices=PRICETYPES), "product": _s(False, default="MIS", choices=PRODUCTS),
    "price": PRICE, "trigger_price": TRIGGER, "disclosed_quantity": DISCLOSED,
}, repr_message=True, post_load=_coerce_quantity)

MODIFY_ORDER = Schema({
    "apikey": APIKEY, "strategy": STRATEGY, "exchange": EXCHANGE, "symbol": _s(), "orderid": _s(),
    "action": ACTION, "product": _s(choices=PRODUCTS), "pricetype": _s(choices=PRICETYPES),
    "price": _req(PRICE), "quantity": POS_QTY, "disclosed_quantity": _req(DISCLOSED), "trigger_price": _req(TRIGGER),
}, repr_message=True, post_load=_coerce_quantity)

CANCEL_ORDER = Schema({"apikey": APIKEY, "strategy": STRATEGY, "orderid": _s()}, repr_message=True)
CANCEL_ALL = Schema({"apikey": APIKEY, "strategy": STRATEGY}, repr_message=True)
CLOSE_POSITION = Schema({"apikey": APIKEY, "strategy": STRATEGY}, repr_message=True)
ORDER_STATUS = Schema({"apikey": APIKEY_PLAIN, "strategy": STRATEGY, "orderid": _s()}, repr_message=True)
OPEN_POSITION = Schema({"apikey": APIKEY_PLAIN, "strategy": STRATEGY, "symbol": _s(), "exchange": EXCHANGE,
                        "product": _s(choices=PRODUCTS)}, repr_message=True)

APIKEY_ONLY = Schema({"apikey": APIKEY_PLAIN}, repr_message=False)
QUOTES = Schema({"apikey": APIKEY_PLAIN, "symbol": _s(), "exchange": EXCHANGE}, repr_message=False)
HOLIDAYS = Schema({"apikey": APIKEY_PLAIN, "year": Field("int", min=2020, max=2050)}, repr_message=False)
TIMINGS = Schema({"apikey": APIKEY_PLAIN, "date": _s()}, repr_message=False)
SEARCH = Schema({"apikey": APIKEY, "query": _s(), "exchange": _s(False, choices=VALID_EXCHANGES)},
                repr_message=False)
DEPTH = Schema({"apikey": APIKEY, "symbol": _s(), "exchange": EXCHANGE}, repr_message=False)
SYMBOL = Schema({"apikey": APIKEY, "symbol": _s(), "exchange": EXCHANGE}, repr_message=False)
HISTORY_INTERVALS = ("1s", "5s", "10s", "15s", "30s", "45s", "1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m",
                     "1h", "2h", "3h", "4h", "D", "W", "M", "Q", "Y")
HISTORY = Schema({"apikey": APIKEY_PLAIN, "symbol": _s(), "exchange": EXCHANGE,
                  "interval": _s(choices=HISTORY_INTERVALS), "start_date": _s(), "end_date": _s(),
                  "source": _s(False, default="api", choices=("api", "db"))}, repr_message=False)
ANALYZER_TOGGLE = Schema({"apikey": APIKEY_PLAIN, "mode": Field("bool", required=True)}, repr_message=False)

MARGIN_POSITION = {
    "symbol": _s(min_len=1, max_len=50, len_error="Symbol must be between 1 and 50 characters."),
    "exchange": EXCHANGE, "action": ACTION, "quantity": _s(), "product": _s(choices=PRODUCTS),
    "pricetype": _s(choices=PRICETYPES), "price": _s(False, default="0"), "trigger_price": _s(False, default="0"),
}
MARGIN = Schema({
    "apikey": _s(min_len=1, max_len=256, len_error="API key must be between 1 and 256 characters."),
    "positions": Field("list", required=True, item=MARGIN_POSITION, min_len=1, max_len=50,
                       len_error="Positions must contain 1 to 50 items."),
}, repr_message=True)


def _coerce_items(data: dict[str, Any]) -> dict[str, Any]:
    """Each basket item gets placeorder's whole-quantity rule (OpenAlgo's item schema post_load)."""
    errors = {}
    for i, item in enumerate(data["orders"]):
        try:
            _coerce_quantity(item)
        except _Invalid as e:
            errors[i] = e.messages
    if errors:
        raise _Invalid({"orders": errors})
    return data


BASKET_ITEM = {
    "exchange": EXCHANGE, "symbol": _s(), "action": ACTION, "quantity": POS_QTY,
    "pricetype": _s(False, default="MARKET", choices=PRICETYPES), "product": _s(False, default="MIS", choices=PRODUCTS),
    "price": PRICE, "trigger_price": TRIGGER, "disclosed_quantity": DISCLOSED,
}
BASKET_ORDER = Schema({"apikey": APIKEY, "strategy": STRATEGY,
                       "orders": Field("list", required=True, item=BASKET_ITEM)},
                      repr_message=True, post_load=_coerce_items, analyze=True)
SPLIT_ORDER = Schema({
    "apikey": APIKEY, "strategy": STRATEGY, "exchange": EXCHANGE, "symbol": _s(), "action": ACTION,
    "quantity": Field("float", required=True, min=0, min_inclusive=False,
                      range_error="Total quantity must be a positive number."),
    "splitsize": Field("int", required=True, min=1, range_error="Split size must be a positive integer."),
    "pricetype": _s(False, default="MARKET", choices=PRICETYPES), "product": _s(False, default="MIS", choices=PRODUCTS),
    "price": PRICE, "trigger_price": TRIGGER, "disclosed_quantity": DISCLOSED,
}, repr_message=True, post_load=_coerce_quantity, analyze=True)
