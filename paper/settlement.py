"""T+1 settlement and holdings, as OpenAlgo's sandbox does them (sandbox/holdings_manager.py).

At 00:00 IST every CNC position opened before that midnight settles:
  long  -> added to the holding (weighted average price); its cost leaves the cash for good (the margin it
           blocked is released, nothing is credited back: the money is now in the holding);
  short -> a sale out of the holding (CNC sells are only accepted against position + holdings): the holding
           shrinks by that many shares and the sale proceeds (quantity x sell price) are credited to cash.
The position is then flat. A CNC sell does not touch the holding on the day it fills: the negative day
position records it until settlement, and the CNC sell check counts that signed position, so the same
shares cannot be sold twice.
"""
from __future__ import annotations

import logging
from typing import Any

from core.clock import to_ist

log = logging.getLogger(__name__)


def holding_key(symbol: str, exchange: str) -> str:
    return f"{exchange}|{symbol}"


class Holdings:
    """Settled delivery shares per (symbol, exchange), plus the cash that settlement moved."""

    def __init__(self, rows: list[dict] | None = None, cash: float = 0.0):
        self.rows: dict[str, dict] = {holding_key(h["symbol"], h["exchange"]): h for h in rows or ()}
        self.cash = float(cash)   # -cost of shares bought into holdings + proceeds of shares sold out of them

    def quantity(self, symbol: str, exchange: str) -> int:
        h = self.rows.get(holding_key(symbol, exchange))
        return h["quantity"] if h is not None and h["quantity"] > 0 else 0

    def dump(self) -> list[dict]:
        return list(self.rows.values())

    def settle(self, positions: dict[str, dict], boundary: float) -> int:
        """Settle every CNC position opened before `boundary`; returns how many moved. Positions stay in
        the dict, flat and with no margin, so their realized P&L keeps counting in the all-time total."""
        day = to_ist(boundary).strftime("%Y-%m-%d")
        n = 0
        for p in positions.values():
            if p["product"] != "CNC" or p.get("_opened_at", boundary) >= boundary or p["quantity"] == 0:
                continue
            qty, avg = p["quantity"], p["average_price"]
            key = holding_key(p["symbol"], p["exchange"])
            h = self.rows.get(key)
            if qty > 0:
                if h is None:
                    self.rows[key] = {"symbol": p["symbol"], "exchange": p["exchange"], "quantity": qty,
                                      "average_price": avg, "settlement_date": day}
                else:
                    total = h["quantity"] + qty
                    h["average_price"] = (h["quantity"] * h["average_price"] + qty * avg) / total
                    h["quantity"] = total
                self.cash -= qty * avg
            else:
                self.cash += -qty * avg
                if h is None:
                    log.warning("T+1: CNC sale of %d %s without a holding; proceeds credited", -qty, p["symbol"])
                else:
                    h["quantity"] += qty
                    if h["quantity"] <= 0:
                        del self.rows[key]
            p.update(quantity=0, average_price=0.0, _margin=0.0)
            n += 1
        if n:
            log.info("T+1 settlement at %s: %d CNC position(s) moved into holdings", day, n)
        return n

    def api_rows(self, ltp_of: Any) -> tuple[list[dict], dict]:
        """OpenAlgo's sandbox holdings rows and statistics; `ltp_of(symbol, exchange)` gives the price or 0."""
        rows, value, invested, pnl_total = [], 0.0, 0.0, 0.0
        for h in self.rows.values():
            if h["quantity"] == 0:
                continue
            ltp = ltp_of(h["symbol"], h["exchange"]) or h["average_price"]
            qty, avg = h["quantity"], h["average_price"]
            pnl = (ltp - avg) * abs(qty)
            value += abs(qty) * ltp
            invested += abs(qty) * avg
            pnl_total += pnl
            rows.append({"symbol": h["symbol"], "exchange": h["exchange"], "product": "CNC", "quantity": qty,
                         "average_price": round(avg, 2), "ltp": round(ltp, 2), "pnl": round(pnl, 2),
                         "pnlpercent": round((ltp - avg) / avg * 100, 2) if avg > 0 else 0.0,
                         "current_value": round(abs(qty) * ltp, 2), "settlement_date": h["settlement_date"]})
        stats = {"totalholdingvalue": round(value, 2), "totalinvvalue": round(invested, 2),
                 "totalprofitandloss": round(pnl_total, 2),
                 "totalpnlpercentage": round(pnl_total / invested * 100, 2) if invested > 0 else 0.0}
        return rows, stats
