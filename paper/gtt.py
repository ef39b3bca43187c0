"""GTT (good-till-triggered) orders as OpenAlgo's sandbox keeps them (sandbox/gtt_manager.py).

A GTT rests with one leg (SINGLE) or two (OCO: a stoploss leg firing when the LTP falls to
`triggerprice_sl`, a target leg firing when it rises to `triggerprice_tg`; both take the same action).
Direction comes from the trigger's role, not from BUY/SELL: `_sl` sits below the LTP and fires on a fall,
`_tg` above it and fires on a rise (inclusive). Placement blocks margin for the leg's order priced at its
limit (the trigger for a MARKET leg); for OCO only the larger leg, since only one can fire. When a leg
fires, the GTT's margin is released and the child order is placed in the ordinary book (which blocks its
own); the sibling leg is cancelled. A child the book refuses re-arms the GTT with its margin. Cancel and
expiry (a year by default) release the margin; the GTT orderbook lists active GTTs only.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from core.clock import IST, to_ist
from paper import schemas as S
from paper.errors import ApiError, analyze_error

log = logging.getLogger(__name__)

DEFAULT_EXPIRY_DAYS = 365
ACTIVE, TRIGGERED, CANCELLED, EXPIRED = "active", "triggered", "cancelled", "expired"

_PRODUCT = S.Field("str", required=True, choices=("NRML", "CNC"))
_GTT_FIELDS: dict[str, S.Field] = {
    "apikey": S.APIKEY, "strategy": S.STRATEGY, "trigger_type": S._s(), "exchange": S.EXCHANGE, "symbol": S._s(),
    "action": S.ACTION, "product": _PRODUCT, "quantity": S.POS_QTY,
    "pricetype": S._s(False, default="LIMIT", choices=("LIMIT", "MARKET")),
    "price": S.Field("float", required=True, min=0, range_error="Price must be a non-negative number."),
    "triggerprice_sl": S.Field("float", default=0.0, min=0, range_error="triggerprice_sl must be non-negative."),
    "triggerprice_tg": S.Field("float", default=0.0, min=0, range_error="triggerprice_tg must be non-negative."),
    "stoploss": S.Field("float", default=None, allow_none=True),
    "target": S.Field("float", default=None, allow_none=True),
    "expires_at": S.Field("str", default=None, allow_none=True),
}
_PRODUCT_ERROR = "GTT supports only CNC (delivery) or NRML (overnight F&O); MIS is intraday-only."


def _check_triggers(d: dict) -> dict:
    """OpenAlgo's _validate_gtt_place_request: trigger_type, and the trigger fields each type needs."""
    tt = (d.get("trigger_type") or "").upper()
    if tt not in ("SINGLE", "OCO"):
        raise S._Invalid({"trigger_type": ["Must be 'SINGLE' or 'OCO'."]})
    d["trigger_type"] = tt
    sl, tg = d.get("triggerprice_sl") or 0.0, d.get("triggerprice_tg") or 0.0
    if tt == "OCO":
        for name, v, what in (("triggerprice_sl", sl, "stoploss trigger"), ("stoploss", d.get("stoploss"),
                              "stoploss leg limit"), ("triggerprice_tg", tg, "target trigger"),
                              ("target", d.get("target"), "target leg limit")):
            if not v:
                raise S._Invalid({name: [f"Required for OCO ({what})."]})
        if sl >= tg:
            raise S._Invalid({"triggerprice_sl": ["Stoploss trigger must be less than target trigger "
                                                  "(triggerprice_tg)."]})
    elif sl <= 0 and tg <= 0:
        raise S._Invalid({"triggerprice_sl": ["SINGLE GTT requires a positive triggerprice_sl or triggerprice_tg."]})
    return S._coerce_quantity(d)


class _GttSchema(S.Schema):
    """OpenAlgo's GTT schemas exclude unknown fields instead of refusing them; the product error is theirs."""

    def load(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k in self.fields}
            for key in ("stoploss", "target", "triggerprice_sl", "triggerprice_tg"):
                if data.get(key) == "":
                    data[key] = None if key in ("stoploss", "target") else 0.0
            if "product" in data and data["product"] not in ("NRML", "CNC"):
                raise ApiError(400, {"status": "error", "mode": "analyze",
                                     "message": str({"product": [_PRODUCT_ERROR]})})
        try:
            return super().load(data)
        except ApiError as e:
            raise ApiError(e.http_status, {**e.body, "mode": "analyze"}) from None


PLACE_GTT = _GttSchema(_GTT_FIELDS, repr_message=True, post_load=_check_triggers)
MODIFY_GTT = _GttSchema({**_GTT_FIELDS, "trigger_id": S._s(min_len=1)}, repr_message=True,
                        post_load=_check_triggers)
CANCEL_GTT = S.Schema({"apikey": S.APIKEY, "strategy": S.STRATEGY, "trigger_id": S._s(min_len=1)},
                      repr_message=True)


def build_legs(d: dict) -> list[dict]:
    """Flat request fields to legs (trigger, direction, action, quantity, limit price, pricetype)."""
    action, qty, pt, price = d["action"].upper(), d["quantity"], d["pricetype"].upper(), d["price"] or 0.0
    sl, tg = d.get("triggerprice_sl") or 0.0, d.get("triggerprice_tg") or 0.0
    leg = {"action": action, "quantity": qty, "pricetype": pt, "status": "pending"}
    if d["trigger_type"] == "OCO":
        return [{**leg, "trigger_price": sl, "direction": "below", "price": d.get("stoploss") or price},
                {**leg, "trigger_price": tg, "direction": "above", "price": d.get("target") or price}]
    if sl > 0 and tg > 0:
        raise analyze_error(400, "A SINGLE GTT needs exactly one of triggerprice_sl or triggerprice_tg; an OCO "
                                 "needs both.")
    return [{**leg, "trigger_price": sl or tg, "direction": "below" if sl > 0 else "above", "price": price}]


def triggered(leg: dict, ltp: float) -> bool:
    return ltp <= leg["trigger_price"] if leg["direction"] == "below" else ltp >= leg["trigger_price"]


def _expiry(supplied: str | None, t: float) -> float:
    """A supplied expires_at is honoured (naive = IST); anything unparseable falls back to a year."""
    if supplied:
        for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M:%S"),
                      lambda v: datetime.strptime(v, "%Y-%m-%d")):
            try:
                dt = parse(supplied)
            except (TypeError, ValueError):
                continue
            return (dt if dt.tzinfo is not None else IST.localize(dt)).timestamp()
        log.warning("GTT expires_at %r unparseable; a year from now", supplied)
    return t + DEFAULT_EXPIRY_DAYS * 86400.0


class GttBook:
    """Every GTT by trigger id (placement order); the engine persists `dump()` and fires legs on quotes."""

    def __init__(self, rows: list[dict] | None = None):
        self.gtts: dict[str, dict] = {g["trigger_id"]: g for g in rows or ()}

    def dump(self) -> list[dict]:
        return list(self.gtts.values())

    def active(self) -> list[dict]:
        return [g for g in self.gtts.values() if g["status"] == ACTIVE]

    def margin(self) -> float:
        return sum(g["margin_blocked"] for g in self.gtts.values() if g["status"] == ACTIVE)

    def new(self, d: dict, legs: list[dict], margin: float, last_price: float, t: float, gid: str) -> dict:
        g = {"trigger_id": gid, "trigger_type": "two-leg" if len(legs) == 2 else "single", "status": ACTIVE,
             "symbol": d["symbol"], "exchange": d["exchange"], "product": d["product"], "legs": legs,
             "last_price": last_price, "strategy": d["strategy"], "margin_blocked": margin,
             "created_at": t, "updated_at": t, "expires_at": _expiry(d.get("expires_at"), t)}
        self.gtts[gid] = g
        return g

    def get_active(self, gid: str) -> dict:
        g = self.gtts.get(gid)
        if g is None or g["status"] != ACTIVE:
            raise analyze_error(404, f"No active GTT with trigger_id '{gid}'")
        return g

    @staticmethod
    def immutable_violation(g: dict, d: dict) -> str | None:
        """What modifygttorder may not change: action, symbol, exchange, trigger_type."""
        act, was = d["action"].upper(), g["legs"][0]["action"]
        if act != was:
            return f"action cannot be changed on an existing GTT ({was} -> {act}). Cancel and re-place."
        if d["symbol"].upper() != g["symbol"].upper():
            return (f"symbol cannot be changed on an existing GTT ({g['symbol']} -> {d['symbol'].upper()}). "
                    "Cancel and re-place.")
        if d["exchange"].upper() != g["exchange"].upper():
            return (f"exchange cannot be changed on an existing GTT ({g['exchange']} -> {d['exchange'].upper()}). "
                    "Cancel and re-place.")
        cur = "OCO" if g["trigger_type"] == "two-leg" else "SINGLE"
        if d["trigger_type"] != cur:
            return f"trigger_type cannot be changed ({cur} -> {d['trigger_type']}). Cancel and re-place."
        return None

    @staticmethod
    def api_row(g: dict) -> dict:
        iso = lambda t: to_ist(t).replace(tzinfo=None).isoformat()  # noqa: E731 - naive IST, as the sandbox
        return {"trigger_id": g["trigger_id"], "trigger_type": g["trigger_type"], "status": g["status"],
                "symbol": g["symbol"], "exchange": g["exchange"],
                "trigger_prices": [leg["trigger_price"] for leg in g["legs"]], "last_price": g["last_price"],
                "legs": [{"action": leg["action"], "quantity": leg["quantity"], "price": leg["price"],
                          "pricetype": leg["pricetype"], "product": g["product"]} for leg in g["legs"]],
                "created_at": iso(g["created_at"]), "updated_at": iso(g["updated_at"]),
                "expires_at": iso(g["expires_at"]), "strategy": g["strategy"],
                "margin_blocked": round(g["margin_blocked"], 2)}


def pricing_basis(leg: dict, last_price: float) -> float:
    """What a leg's margin is sized on: its limit, else its trigger (a MARKET leg), else the LTP."""
    return leg["price"] or leg["trigger_price"] or last_price

