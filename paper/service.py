"""OpenAlgo's endpoints on top of the engine: what each call does and the exact shape it answers with.

Shapes follow OpenAlgo in analyzer (sandbox) mode: "mode":"analyze" on the sandbox-routed calls,
orderstatus with `price_type`, `filled_quantity`, `pending_quantity`, `strategy`; orderbook rows with the
sandbox extras; funds with the sandbox extras. Quotes and margin are not sandbox-routed upstream, so they
carry no mode. Deliberate differences from the sandbox, for a simulator a real-money daemon is tested on:
cancelallorder also cancels 'trigger pending' orders (the sandbox's filter has a typo and skips them; live
brokers cancel them); an order still live from an earlier session stays in the orderbook (the sandbox hides
it by its timestamp while it can still fill); closeposition and the MIS square-off close at once even on a
stale quote; modifyorder re-sizes the order's blocked margin to its new quantity and price (the sandbox keeps
what placement blocked, so a modified order can hold less than it needs). Holidays: none are known, the list
is always empty. basketorder and splitorder answer as analyzer mode does; depth comes from the pushed quote.
Sessions (paper.session): orderbook, tradebook and positionbook show the current session (from 03:00 IST)
only; a position of an earlier session shows while it is open and NRML (MIS was squared off, CNC settled).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from core.clock import to_ist
from gateway.identity import PAPER_BROKER_NAME
from history.synthetic import DEFAULT_SEED
from paper.engine import COMPLETE, LIVE, OPEN, REJECTED, TRIGGER_PENDING, Engine, FillFaults, pos_key
from paper.errors import ApiError, analyze_error
from paper.gtt import GttBook
from paper.history import PaperHistory
from paper.instruments import to_search_row
from paper.market import Quote
from paper.market_hours import timings as session_timings
from paper.session import session_start

MODE = {"mode": "analyze"}
SPLIT_MAX_ORDERS = 100     # OpenAlgo's split_order_service MAX_ORDERS


def r2(x: float) -> float:
    return round(x, 2) + 0.0


class PaperBroker:
    def __init__(self, engine: Engine, history_seed: int = DEFAULT_SEED):
        self.engine = engine
        self.started_at = engine._wall()
        self.history = PaperHistory(history_seed)  # history and intervals: synthetic candles, no engine state

    def _run(self, fn: Callable[[], Any]) -> Any:
        e = self.engine
        with e.lock:
            try:
                if e.mode == "wall":
                    e._squareoff_check(e._wall())
                return fn()
            finally:
                e.flush()

    # ------------------------------------------------------------ orders

    def place_order(self, d: dict, faults: FillFaults | None = None, reject_reason: str | None = None) -> dict:
        def go() -> dict:
            o = self.engine.place(d, self.engine.now(), faults=faults, reject_reason=reject_reason)
            return {"status": "success", "orderid": o["orderid"], **MODE}
        return self._run(go)

    def place_smart_order(self, d: dict, faults: FillFaults | None = None, reject_reason: str | None = None) -> dict:
        """OpenAlgo's decision table on the target net position. Sandbox quirk kept: always MARKET."""
        def go() -> dict:
            e = self.engine
            cur = e._position_qty(d["symbol"], d["exchange"], d["product"])
            target, qty = int(d["position_size"]), int(d["quantity"])
            if target == 0 and cur == 0 and qty != 0:
                action, n = d["action"].upper(), qty
            elif target == cur:
                msg = ("No OpenPosition Found. Not placing Exit order." if qty == 0
                       else "Positions Already Matched. No Action needed.")
                return {"status": "success", "message": msg, **MODE}
            else:
                diff = target - cur
                action, n = ("BUY" if diff > 0 else "SELL"), abs(diff)
            order = {**d, "action": action, "quantity": n, "pricetype": "MARKET", "price": 0.0, "trigger_price": 0.0}
            o = e.place(order, e.now(), faults=faults, reject_reason=reject_reason)
            return {"status": "success", "orderid": o["orderid"], **MODE}
        return self._run(go)

    def place_basket(self, d: dict) -> dict:
        """OpenAlgo's basketorder in analyzer mode: BUY legs first, then SELL; each leg placed on its own, a
        refusal is that leg's error result and the basket still answers 200 success."""
        def go() -> dict:
            e = self.engine
            items = ([o for o in d["orders"] if o["action"].upper() == "BUY"]
                     + [o for o in d["orders"] if o["action"].upper() == "SELL"])
            results = []
            for i, item in enumerate(items):
                try:
                    o = e.place({**item, "strategy": d["strategy"]}, e.now())
                except ApiError as err:
                    results.append({"symbol": item["symbol"], "status": "error",
                                    "message": err.body.get("message") or "Order placement failed"})
                    continue
                results.append({"symbol": item["symbol"], "exchange": item["exchange"], "product": item["product"],
                                "status": "success", "orderid": o["orderid"], "batch_order": True,
                                "is_last_order": i == len(items) - 1})
            return {**MODE, "status": "success", "results": results}
        return self._run(go)

    def place_split(self, d: dict) -> dict:
        """OpenAlgo's splitorder in analyzer mode: full `splitsize` children then the remainder, at most 100."""
        size, total = d["splitsize"], int(d["quantity"])
        parts = [size] * (total // size) + ([total % size] if total % size else [])
        if len(parts) > SPLIT_MAX_ORDERS:
            raise analyze_error(400, f"Total number of orders would exceed maximum limit of {SPLIT_MAX_ORDERS}")

        def go() -> dict:
            e = self.engine
            results = []
            for n, qty in enumerate(parts, start=1):
                try:
                    o = e.place({**d, "quantity": qty}, e.now())
                    results.append({"order_num": n, "quantity": qty, "status": "success", "orderid": o["orderid"]})
                except ApiError as err:
                    results.append({"order_num": n, "quantity": qty, "status": "error",
                                    "message": err.body.get("message") or "Order placement failed"})
            return {**MODE, "status": "success", "total_quantity": total, "split_size": size, "results": results}
        return self._run(go)

    def _order(self, orderid: str) -> dict:
        o = self.engine.orders.get(orderid)
        if o is None:
            raise analyze_error(404, f"Order {orderid} not found")
        return o

    def modify_order(self, d: dict) -> dict:
        def go() -> dict:
            o = self._order(d["orderid"])
            if o["order_status"] not in LIVE:
                raise analyze_error(400, f"Cannot modify order in {o['order_status']} status")
            self.engine.modify(o, d)
            return {"status": "success", "orderid": o["orderid"], "message": "Order modified successfully", **MODE}
        return self._run(go)

    def cancel_order(self, orderid: str) -> dict:
        def go() -> dict:
            o = self._order(orderid)
            if o["order_status"] not in LIVE:
                raise analyze_error(400, f"Cannot cancel order in {o['order_status']} status")
            self.engine.cancel(o)
            return {"status": "success", "orderid": orderid, "message": "Order cancelled successfully", **MODE}
        return self._run(go)

    def cancel_all(self) -> dict:
        def go() -> dict:
            live = sorted(self.engine._live.values(), key=lambda o: o["_seq"])
            if not live:
                return {"status": "success", "message": "No open orders to cancel", "canceled_orders": [],
                        "failed_cancellations": [], **MODE}
            for o in live:
                self.engine.cancel(o)
            ids = [o["orderid"] for o in live]
            return {"status": "success", "message": f"Canceled {len(ids)} orders. Failed to cancel 0 orders.",
                    "canceled_orders": ids, "failed_cancellations": [], **MODE}
        return self._run(go)

    def close_position(self, strategy: str) -> dict:
        def go() -> dict:
            e = self.engine
            open_pos = [p for p in e.positions.values() if p["quantity"] != 0]
            if not open_pos:
                return {"status": "success", "message": "No open positions to close", **MODE}
            closed = failed = 0
            for p in open_pos:
                if e.market_close(p, strategy, e.now(), fallback=False) is None:
                    failed += 1
                else:
                    closed += 1
            return {"status": "success", "message": f"Closed {closed} positions", "closed_positions": closed,
                    "failed_closures": failed, **MODE}
        return self._run(go)

    # ------------------------------------------------------------ GTT (paper.gtt)

    def place_gtt(self, d: dict) -> dict:
        def go() -> dict:
            g = self.engine.place_gtt(d, self.engine.now())
            return {"status": "success", **MODE, "trigger_id": g["trigger_id"]}
        return self._run(go)

    def modify_gtt(self, d: dict) -> dict:
        def go() -> dict:
            g = self.engine.modify_gtt(d, self.engine.now())
            return {"status": "success", **MODE, "trigger_id": g["trigger_id"]}
        return self._run(go)

    def cancel_gtt(self, trigger_id: str) -> dict:
        def go() -> dict:
            g = self.engine.cancel_gtt(trigger_id, self.engine.now())
            return {"status": "success", **MODE, "trigger_id": g["trigger_id"]}
        return self._run(go)

    def gtt_orderbook(self) -> dict:
        """Active GTTs only, newest first (the sandbox's default filter)."""
        def go() -> dict:
            rows = [GttBook.api_row(g) for g in reversed(self.engine.gtt.active())]
            return {"status": "success", **MODE, "data": rows}
        return self._run(go)

    # ------------------------------------------------------------ books

    def order_status(self, orderid: str) -> dict:
        def go() -> dict:
            o = self._order(orderid)
            row = _order_row(o)
            row["price_type"] = row.pop("pricetype")
            row.pop("rejection_reason")
            return {"status": "success", "data": row, **MODE}
        return self._run(go)

    def orderbook(self) -> dict:
        def go() -> dict:
            start = session_start(self.engine.now())
            orders = sorted((o for o in self.engine.orders.values()
                             if o["_placed_at"] >= start or o["order_status"] in LIVE),
                            key=lambda o: o["_seq"], reverse=True)
            st = [o["order_status"] for o in orders]
            stats = {"total_buy_orders": sum(o["action"] == "BUY" for o in orders),
                     "total_sell_orders": sum(o["action"] == "SELL" for o in orders),
                     "total_completed_orders": st.count(COMPLETE), "total_open_orders": st.count(OPEN),
                     "total_rejected_orders": st.count(REJECTED),
                     "total_trigger_pending_orders": st.count(TRIGGER_PENDING)}
            return {"status": "success", "data": {"orders": [_order_row(o) for o in orders], "statistics": stats},
                    **MODE}
        return self._run(go)

    def tradebook(self) -> dict:
        def go() -> dict:
            start = session_start(self.engine.now())
            rows = [{"tradeid": t["tradeid"], "orderid": t["orderid"], "symbol": t["symbol"],
                     "exchange": t["exchange"], "action": t["action"], "quantity": t["quantity"],
                     "average_price": r2(t["average_price"]), "price": r2(t["average_price"]),
                     "trade_value": r2(t["trade_value"]), "product": t["product"], "strategy": t["strategy"] or "",
                     "timestamp": t["timestamp"]}
                    for t in reversed(self.engine.trades) if t["_t"] >= start]  # newest first, as the sandbox
            return {"status": "success", "data": rows, **MODE}
        return self._run(go)

    def positionbook(self) -> dict:
        """The sandbox's rules: positions traded this session, plus NRML carried open from earlier sessions;
        pnl is today's realized + unrealized, a flat position shows average price 0."""
        def go() -> dict:
            e = self.engine
            now = e.now()
            start = session_start(now)
            rows = []
            tot_unreal = tot_real = 0.0
            for p in e.positions.values():
                qty, today = p["quantity"], e.day_realized(p, now)
                # traded this session (a flat one too: the sandbox's proxy for that, a non-zero realized P&L,
                # would hide a position closed at its entry price), or NRML carried open
                if p["_updated_at"] < start and not (p["product"] == "NRML" and qty != 0):
                    continue
                ltp = e._ltp(p) if qty else p["last_price"]
                unreal = qty * (ltp - p["average_price"]) if qty else 0.0
                invested = abs(qty * p["average_price"])
                pnl = today + unreal
                tot_unreal += unreal
                tot_real += today
                rows.append({"symbol": p["symbol"], "exchange": p["exchange"], "product": p["product"],
                             "quantity": qty, "average_price": r2(p["average_price"]) if qty else 0.0,
                             "ltp": r2(ltp), "pnl": r2(pnl),
                             "pnlpercent": r2(pnl / invested * 100) if qty and invested > 0 else 0.0,
                             "unrealized_pnl": r2(unreal), "today_realized_pnl": r2(today),
                             "total_pnl_today": r2(pnl), "lot_size": 1.0})
            return {"status": "success", "data": rows, "total_pnl": r2(tot_real + tot_unreal),
                    "total_unrealized_pnl": r2(tot_unreal), "total_today_realized_pnl": r2(tot_real),
                    "total_pnl_today": r2(tot_real + tot_unreal), **MODE}
        return self._run(go)

    def holdings(self) -> dict:
        """Settled CNC shares (T+1), in the sandbox's shape."""
        def go() -> dict:
            e = self.engine

            def ltp_of(symbol: str, exchange: str) -> float:
                q = e.book.current.get((symbol, exchange))
                return q.ltp if q is not None else 0.0
            rows, stats = e.holdings.api_rows(ltp_of)
            return {"status": "success", "data": {"holdings": rows, "statistics": stats}, **MODE}
        return self._run(go)

    def open_position(self, d: dict) -> dict:
        def go() -> dict:
            p = self.engine.positions.get(pos_key(d["symbol"], d["exchange"], d["product"]))
            return {"status": "success", "quantity": p["quantity"] if p else 0, **MODE}
        return self._run(go)

    def funds(self) -> dict:
        def go() -> dict:
            e = self.engine
            realized, unreal, used = e.realized(), e.unrealized(), e.used_margin()
            today = e.session_realized(e.now())
            data = {"availablecash": r2(e.available()), "collateral": 0.0, "m2munrealized": r2(unreal),
                    "m2mrealized": r2(today), "total_realized_pnl": r2(realized), "today_realized_pnl": r2(today),
                    "utiliseddebits": r2(used), "grossexposure": r2(used), "totalpnl": r2(realized + unreal),
                    "last_reset": e.funds_meta["last_reset"], "reset_count": e.funds_meta["reset_count"]}
            return {"status": "success", "data": data, **MODE}
        return self._run(go)

    # ------------------------------------------------------------ data and utilities

    def _quote(self, symbol: str, exchange: str, failed: str) -> Quote:
        q = self.engine.book.current.get((symbol, exchange))
        if q is None and self.engine.instruments.get(symbol, exchange) is not None:
            # listed, but no price pushed yet: what OpenAlgo answers when its broker returns no quote
            raise ApiError(500, {"status": "error", "message": failed})
        if q is None:
            raise ApiError(400, {"status": "error", "message": (
                f"Symbol '{symbol}' not found for exchange '{exchange}'. Please verify the symbol name and "
                "ensure master contracts are downloaded.")})
        return q

    def quotes(self, symbol: str, exchange: str) -> dict:
        return self._run(lambda: {"status": "success", "data": self._quote(symbol, exchange,
                                                                           "Failed to fetch quotes").to_api()})

    def depth(self, symbol: str, exchange: str) -> dict:
        """OpenAlgo's depth shape from the pushed quote: its bid and ask as level 1 (sizes unknown, so 0), the
        other four levels zero as the Fyers mapping pads them. Not sandbox-routed upstream, so no mode."""
        def go() -> dict:
            q = self._quote(symbol, exchange, "Failed to fetch market depth")
            empty = [{"price": 0, "quantity": 0}] * 4
            return {"status": "success", "data": {
                "open": q.open, "high": q.high, "low": q.low, "ltp": q.ltp, "ltq": 0, "prev_close": q.prev_close,
                "volume": q.volume, "oi": 0, "totalbuyqty": 0, "totalsellqty": 0,
                "asks": [{"price": q.ask, "quantity": 0}, *empty], "bids": [{"price": q.bid, "quantity": 0}, *empty]}}
        return self._run(go)

    def margin(self, positions: list[dict]) -> dict:
        def go() -> dict:
            e = self.engine
            total = 0.0
            for p in positions:
                try:
                    n = float(p["quantity"])
                    price = float(p.get("price") or 0) or float(p.get("trigger_price") or 0)
                except ValueError:
                    raise ApiError(400, {"status": "error", "message":
                                         f"Invalid number in position {p['symbol']}: quantity, price and "
                                         "trigger_price must be numbers"}) from None
                if p["pricetype"] == "MARKET" or price <= 0:
                    q = e.book.current.get((p["symbol"], p["exchange"]))
                    if q is None or q.ltp <= 0:
                        raise ApiError(400, {"status": "error", "message":
                                             f"No price available for {p['symbol']} on {p['exchange']}"})
                    price = q.ltp
                total += abs(n) * price / e._order_lev(p["symbol"], p["exchange"], p["product"])
            return {"status": "success", "data": {"total_margin_required": r2(total), "span_margin": 0.0,
                                                  "exposure_margin": r2(total)}}
        return self._run(go)

    def search(self, query: str, exchange: str | None) -> dict:
        """OpenAlgo's symbol search over the instrument master (what refresh asks a real server)."""
        if not query.strip():
            raise ApiError(400, {"status": "error", "message": "Query parameter is required and cannot be empty"})
        rows = self.engine.instruments.search(query, exchange)
        if not rows:
            return {"status": "success", "message": "No matching symbols found", "data": []}
        return {"status": "success", "message": f"Found {len(rows)} matching symbols", "data": rows}

    def symbol(self, symbol: str, exchange: str) -> dict:
        inst = self.engine.instruments.get(symbol, exchange)
        if inst is None:
            raise ApiError(404, {"status": "error", "message": f"Symbol {symbol} not found in exchange {exchange}"})
        return {"data": to_search_row(inst), "status": "success"}

    def holidays(self, year: int | None) -> dict:
        y = year or to_ist(self.engine.now()).year
        return {"status": "success", "year": y, "timezone": "Asia/Kolkata", "data": []}

    def timings(self, text: str) -> dict:
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            raise ApiError(400, {"status": "error", "message": "Invalid date format. Use YYYY-MM-DD"}) from None
        if not date(2020, 1, 1) <= day <= date(2050, 12, 31):
            raise ApiError(400, {"status": "error", "message": "Date must be between 2020-01-01 and 2050-12-31"})
        return {"status": "success", "data": session_timings(day)}

    def ping(self) -> dict:
        """OpenAlgo's ping, naming this server as the paper broker in a way no real OpenAlgo can (see
        gateway.identity): the daemon refuses mode live against it."""
        return {"status": "success", "data": {"message": "pong", "broker": PAPER_BROKER_NAME, "paper_broker": True}}

    def analyzer_status(self) -> dict:
        e = self.engine
        return {"status": "success", "data": {"analyze_mode": e.analyze_mode,
                                              "mode": "analyze" if e.analyze_mode else "live",
                                              "total_logs": e.total_logs}}

    def analyzer_toggle(self, mode: bool) -> dict:
        def go() -> dict:
            e = self.engine
            e.analyze_mode = bool(mode)
            e._d_kv = True
            body = self.analyzer_status()
            body["data"]["message"] = f"Analyzer mode switched to {'analyze' if mode else 'live'}"
            return body
        return self._run(go)

    def count_request(self) -> None:
        with self.engine.lock:
            self.engine.total_logs += 1

    # ------------------------------------------------------------ admin

    def push_market(self, quotes: list[Quote], clock: float | None) -> dict:
        def go() -> dict:
            self.engine.push(quotes, clock)
            return self._clock_body(received=len(quotes))
        return self._run(go)

    def reset(self, mode: str, clock: float | None, funds: float | None) -> dict:
        with self.engine.lock:
            self.engine.reset(mode, clock, funds)
            self.engine.flush()
            return self._clock_body()

    def _clock_body(self, **extra: Any) -> dict:
        e = self.engine
        return {"status": "success", "clock_mode": e.mode, "clock": e.clock, "now": e.now(),
                "pending_quotes": e.book.pending(), **extra}

    def health(self) -> dict:
        e = self.engine
        with e.lock:
            return {"status": "ok", "pid": os.getpid(), "clock_mode": e.mode, "clock": e.clock, "now": e.now(),
                    "orders": len(e.orders), "open_orders": len(e._live), "positions": len(e.positions),
                    "symbols": len(e.book.current), "pending_quotes": e.book.pending(),
                    "uptime_s": round(e._wall() - self.started_at, 3)}


def _order_row(o: dict) -> dict:
    live = o["order_status"] in LIVE
    return {"orderid": o["orderid"], "symbol": o["symbol"], "exchange": o["exchange"], "action": o["action"],
            "quantity": o["quantity"], "price": r2(o["price"]), "trigger_price": r2(o["trigger_price"]),
            "pricetype": o["pricetype"], "product": o["product"], "order_status": o["order_status"],
            "average_price": r2(o["average_price"]), "filled_quantity": o["filled_quantity"],
            "pending_quantity": o["quantity"] - o["filled_quantity"] if live else 0,
            "rejection_reason": o["rejection_reason"], "timestamp": o["timestamp"], "strategy": o["strategy"]}
