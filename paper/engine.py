"""The paper broker's matching engine: orders, fills, positions and funds, as OpenAlgo's sandbox does them.

Fill rules (sandbox `_process_order`):
  MARKET             at placement: BUY at the ask, SELL at the bid (LTP when that side is 0).
  LIMIT marketable   at placement (BUY limit >= LTP, SELL limit <= LTP): at the LTP.
  LIMIT resting      when the LTP crosses (BUY LTP <= limit, SELL LTP >= limit): at the limit price.
  SL / SL-M          start 'trigger pending'; trigger when BUY LTP >= trigger / SELL LTP <= trigger;
                     SL-M then fills at the LTP; SL goes 'open' and fills at the LTP once the limit is
                     satisfiable (BUY LTP <= limit, SELL LTP >= limit).
Stale-quote guard (sandbox `quote_looks_stale`): a quote whose LTP lies outside its own day low-high (both
known) fills nothing; the order stays as it is and is tried again on the next coherent quote.
Margin is what the sandbox blocks at placement (LTP for MARKET, the limit price for LIMIT, the trigger for
SL/SL-M; none for the part that reduces a position): a fill moves its share of the order's margin onto the
position, a reduction releases the position's margin in proportion, a close releases all of it, so the
amount released is the amount blocked whatever the fill price. Used margin = sum of position margins + the
margin of live orders. Available cash = starting funds + realized P&L + cash moved by T+1 settlement (see
paper.settlement) - used margin. MIS leverage is configurable; CNC and NRML are 1x.
Sessions (paper.session): the day's books show the session that began at 03:00 IST; T+1 settles at 00:00.

Every public method takes the engine lock and writes its changes to the store before returning, so the
HTTP response is never ahead of the disk.
"""
from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from typing import Any, Protocol

from core.clock import to_ist
from paper.errors import ApiError, analyze_error
from paper.gtt import ACTIVE as GTT_ACTIVE
from paper.gtt import CANCELLED as GTT_CANCELLED
from paper.gtt import EXPIRED as GTT_EXPIRED
from paper.gtt import TRIGGERED as GTT_TRIGGERED
from paper.gtt import GttBook, build_legs, pricing_basis, triggered
from paper.instruments import InstrumentMaster
from paper.market import Quote, QuoteBook
from paper.market_hours import latest_boundary, mis_blocked, square_off_groups
from paper.session import parse_stamp, session_start, settlement_boundary
from paper.settlement import Holdings
from paper.store import Changes, Store

log = logging.getLogger(__name__)

OPEN, COMPLETE, REJECTED, CANCELLED, TRIGGER_PENDING = "open", "complete", "rejected", "cancelled", "trigger pending"
LIVE = (OPEN, TRIGGER_PENDING)
SQUARE_OFF_STRATEGY = "AUTO_SQUARE_OFF"
DERIVATIVE_EXCHANGES = ("NFO", "BFO", "MCX", "CDS", "BCD", "NCDEX")
SANDBOX_EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX")
_SQ_GROUPS = {hhmm: (dtime(int(hhmm[:2]), int(hhmm[3:])), exch) for hhmm, exch in square_off_groups().items()}
DAY = 86400.0


@dataclass(frozen=True)
class FillFaults:
    """Per-order fill faults (see paper.faults): a MARKET delay and a split into parts."""

    delay_s: float = 0.0
    parts: int = 0
    span_s: float = 0.0

    @property
    def active(self) -> bool:
        return self.delay_s > 0 or self.parts > 1


class Derivatives(Protocol):
    """What the engine asks about instruments priced from another one (paper.options.desk.OptionsDesk)."""

    quote_exchanges: frozenset[str]

    def prepare(self, symbol: str, exchange: str, quantity: int, t: float, quotes: QuoteBook) -> bool: ...

    def quantity_rule(self, symbol: str, exchange: str, quantity: int, t: float) -> None: ...

    def leverage(self, symbol: str, exchange: str) -> float | None: ...

    def derived(self, index: Quote, held: Iterable[tuple[str, str]]) -> list[Quote]: ...


_IST_FIXED = timezone(timedelta(hours=5, minutes=30))  # IST as a fixed offset: the same fields, without pytz


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, _IST_FIXED).strftime("%Y-%m-%d %H:%M:%S")


def quote_looks_stale(q: Quote) -> bool:
    """The sandbox's guard: an LTP outside the quote's own day low-high is a stale price (both must be known)."""
    return q.high > 0 and q.low > 0 and not q.low <= q.ltp <= q.high


def pos_key(symbol: str, exchange: str, product: str) -> str:
    return f"{exchange}|{symbol}|{product}"


def split_quantity(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class Engine:
    def __init__(self, store: Store, *, leverage: float = 5.0, starting_funds: float = 10_000_000.0,
                 wall: Callable[[], float] = time.time, instruments: InstrumentMaster | None = None,
                 derivatives: Derivatives | None = None):
        self.lock = threading.RLock()
        self.derivatives = derivatives
        self.instruments = instruments if instruments is not None else InstrumentMaster()
        self.leverage = float(leverage)
        self.default_funds = float(starting_funds)
        self._store = store
        self._wall = wall
        self._ids = random.Random()
        self._init_memory()
        self._load()

    # ------------------------------------------------------------ state

    def _init_memory(self) -> None:
        self.book = QuoteBook()
        self.orders: dict[str, dict] = {}
        self.trades: list[dict] = []
        self.positions: dict[str, dict] = {}
        self._live: dict[str, dict] = {}
        self._resting: dict[tuple[str, str], list[str]] = {}
        self._plans: list[tuple[float, int, str]] = []
        self._plan_n = 0
        self._order_seq = 0
        self._trade_seq = 0
        self._persisted_future: set[int] = set()
        self.mode = "wall"
        self.clock: float | None = None
        self._sq_until: dict[str, float] = {}
        self._next_sq = float("-inf")
        self.funds_meta: dict[str, Any] = {"starting_funds": self.default_funds, "reset_count": 0,
                                           "last_reset": stamp(self._wall())}
        self.analyze_mode = True
        self.total_logs = 0
        self.holdings = Holdings()
        self._settled_until: float | None = None
        self.gtt = GttBook()
        self._reset_dirty()

    def _reset_dirty(self) -> None:
        self._d_orders: dict[str, dict] = {}
        self._d_pos: dict[str, dict] = {}
        self._d_trades: list[tuple[int, dict]] = []
        self._d_quotes: dict[tuple[str, str], Quote] = {}
        self._d_future_add: list[tuple[int, list]] = []
        self._d_future_del: list[int] = []
        self._d_kv = False

    def _kv(self) -> dict[str, Any]:
        return {"mode": self.mode, "clock": self.clock, "sq_until": self._sq_until, "funds": self.funds_meta,
                "analyze_mode": self.analyze_mode, "total_logs": self.total_logs,
                "order_seq": self._order_seq, "trade_seq": self._trade_seq, "holdings": self.holdings.dump(),
                "settlement_cash": self.holdings.cash, "settled_until": self._settled_until,
                "gtts": self.gtt.dump()}

    def _load(self) -> None:
        snap = self._store.load()
        kv = snap.kv
        self.mode = kv.get("mode", "wall")
        self.clock = kv.get("clock")
        self._sq_until = dict(kv.get("sq_until", {}))
        self._recompute_next_sq()
        self.funds_meta = kv.get("funds", self.funds_meta)
        self.analyze_mode = kv.get("analyze_mode", True)
        self.total_logs = kv.get("total_logs", 0)
        self._order_seq = kv.get("order_seq", 0)
        self._trade_seq = kv.get("trade_seq", 0)
        self.holdings = Holdings(kv.get("holdings"), kv.get("settlement_cash", 0.0))
        self._settled_until = kv.get("settled_until")
        self.gtt = GttBook(kv.get("gtts"))
        self.trades = snap.trades
        for t in self.trades:  # rows stored before trades carried their epoch and id
            t.setdefault("_t", parse_stamp(t["timestamp"]))
            t.setdefault("tradeid", f"TRADE-{t['_seq']}")
        t_load = self.now()
        for p in sorted(snap.positions, key=lambda p: p.get("_seq", 0)):
            if "_margin" not in p:  # stored before margins were kept per position: what they blocked then
                p["_margin"] = abs(p["quantity"]) * p["average_price"] / self._lev(p["product"])
            p.setdefault("_opened_at", t_load)
            p.setdefault("_updated_at", t_load)
            self.positions[pos_key(p["symbol"], p["exchange"], p["product"])] = p
        self.book.load(snap.quotes, snap.future_quotes)
        self._persisted_future = {s for s, _ in snap.future_quotes}
        for o in snap.orders:
            self.orders[o["orderid"]] = o
            if o["order_status"] in LIVE:
                self._live[o["orderid"]] = o
                if o.get("_plan"):
                    for due, _ in o["_plan"]:
                        self._push_plan(due, o["orderid"])
                else:
                    self._resting.setdefault((o["symbol"], o["exchange"]), []).append(o["orderid"])
        if not kv:
            self._d_kv = True
            self._flush()
        log.info("paper broker state: %d orders, %d trades, %d positions, clock %s (%s)",
                 len(self.orders), len(self.trades), len(self.positions), self.clock, self.mode)

    def _flush(self) -> None:
        changed = (self._d_orders or self._d_pos or self._d_trades or self._d_quotes or self._d_future_add
                   or self._d_future_del or self._d_kv)
        if not changed:
            return
        c = Changes(
            orders=[(oid, o["_seq"], o) for oid, o in self._d_orders.items()],
            trades=self._d_trades,
            positions=list(self._d_pos.items()),
            quotes=[(f"{k[1]}|{k[0]}", q.row()) for k, q in self._d_quotes.items()],
            future_add=self._d_future_add,
            future_del=self._d_future_del,
            kv=self._kv(),
        )
        self._reset_dirty()
        self._store.write(c)

    def _touch(self, o: dict) -> None:
        self._d_orders[o["orderid"]] = o

    # ------------------------------------------------------------ time

    def now(self) -> float:
        if self.mode == "replay" and self.clock is not None:
            return self.clock
        return self._wall()

    def clock_known(self) -> bool:
        return self.mode == "wall" or self.clock is not None

    def _recompute_next_sq(self) -> None:
        self._next_sq = min((v + DAY for v in self._sq_until.values()), default=float("-inf"))
        if len(self._sq_until) < len(_SQ_GROUPS):
            self._next_sq = float("-inf")

    def _squareoff_check(self, t: float) -> None:
        """Square off every group whose time passed since the last check (the first check only marks), and
        run T+1 settlement once per midnight crossed."""
        if self._settled_until is None or t >= self._settled_until + DAY:  # IST has no DST: a day is 86400 s
            b = settlement_boundary(t)
            for p in self.positions.values():
                if p["product"] == "CNC" and p["quantity"] != 0 and p["_opened_at"] < b:
                    self._d_pos[pos_key(p["symbol"], p["exchange"], p["product"])] = p
            self.holdings.settle(self.positions, b)
            self._settled_until = b
            self._d_kv = True
        for g in self.gtt.active() if self.gtt.gtts else ():
            if t >= g["expires_at"]:
                g.update(status=GTT_EXPIRED, margin_blocked=0.0, updated_at=t)
                self._d_kv = True
                log.info("GTT %s expired without firing", g["trigger_id"])
        if t < self._next_sq:
            return
        for hhmm, (at, exchanges) in _SQ_GROUPS.items():
            b = latest_boundary(t, at)
            prev = self._sq_until.get(hhmm)
            if prev is None or b > prev:
                if prev is not None:
                    self._square_off(exchanges, b, hhmm)
                self._sq_until[hhmm] = b
                self._d_kv = True
        self._recompute_next_sq()

    # ------------------------------------------------------------ money

    def _lev(self, product: str) -> float:
        return self.leverage if product == "MIS" else 1.0

    def _position_qty(self, symbol: str, exchange: str, product: str) -> int:
        p = self.positions.get(pos_key(symbol, exchange, product))
        return p["quantity"] if p else 0

    def _order_lev(self, symbol: str, exchange: str, product: str) -> float:
        """An option's premium is paid in full (the sandbox's option leverage, 1x); everything else by product."""
        if self.derivatives is not None and exchange in DERIVATIVE_EXCHANGES:
            lev = self.derivatives.leverage(symbol, exchange)
            if lev is not None:
                return lev
        return self._lev(product)

    def _margin_for(self, product: str, action: str, qty: int, ref_price: float, cur: int,
                    lev: float | None = None) -> float:
        """Margin a new order blocks: none for the part that reduces the position (sandbox rule)."""
        if product == "CNC" and action == "SELL":
            return 0.0
        if (cur > 0 and action == "SELL") or (cur < 0 and action == "BUY"):
            qty = max(0, qty - abs(cur))
        return qty * ref_price / (self._lev(product) if lev is None else lev)

    def _ltp(self, p: dict) -> float:
        q = self.book.current.get((p["symbol"], p["exchange"]))
        return q.ltp if q is not None and q.ltp > 0 else p["last_price"]

    def used_margin(self) -> float:
        return (sum(p["_margin"] for p in self.positions.values()) + sum(o["_margin"] for o in self._live.values())
                + self.gtt.margin())

    def realized(self) -> float:
        """All-time realized P&L (the sandbox's total_realized_pnl)."""
        return sum(p["realized"] for p in self.positions.values())

    def day_realized(self, p: dict, t: float) -> float:
        """Realized P&L of `p` in the session `t` belongs to (the sandbox's today_realized_pnl)."""
        return p.get("day_realized", 0.0) if p.get("_session") == session_start(t) else 0.0

    def session_realized(self, t: float) -> float:
        """m2mrealized: realized P&L of the current session only."""
        return sum(self.day_realized(p, t) for p in self.positions.values())

    def unrealized(self) -> float:
        return sum(p["quantity"] * (self._ltp(p) - p["average_price"]) for p in self.positions.values()
                   if p["quantity"])

    def available(self) -> float:
        return self.funds_meta["starting_funds"] + self.realized() + self.holdings.cash - self.used_margin()

    # ------------------------------------------------------------ orders

    def _new_order_id(self, t: float) -> str:
        prefix = datetime.fromtimestamp(t, _IST_FIXED).strftime("%y%m%d")
        while True:
            micro = int((self._wall() % 1.0) * 1_000_000)
            oid = f"{prefix}{micro:06d}{self._ids.randint(0, 99):02d}"
            if oid not in self.orders:
                return oid

    def _new_order(self, *, symbol: str, exchange: str, action: str, quantity: int, pricetype: str,
                   product: str, price: float, trigger_price: float, strategy: str, t: float,
                   status: str, margin: float = 0.0, reason: str = "") -> dict:
        self._order_seq += 1
        o = {"orderid": self._new_order_id(t), "symbol": symbol, "exchange": exchange, "action": action,
             "quantity": quantity, "price": price, "trigger_price": trigger_price, "pricetype": pricetype,
             "product": product, "order_status": status, "average_price": 0.0, "filled_quantity": 0,
             "rejection_reason": reason, "timestamp": stamp(t), "strategy": strategy,
             "_seq": self._order_seq, "_placed_at": t, "_margin": margin, "_triggered": False}
        self.orders[o["orderid"]] = o
        if status in LIVE:
            self._live[o["orderid"]] = o
        self._touch(o)
        return o

    def place(self, d: dict, t: float, *, faults: FillFaults | None = None,
              reject_reason: str | None = None) -> dict:
        """Validate like the sandbox, store the order, fill what can fill now. Caller holds the lock."""
        symbol, exchange, product = d["symbol"], d["exchange"], d["product"]
        action, qty, pt = d["action"].upper(), int(d["quantity"]), d["pricetype"]
        price, trig = float(d.get("price") or 0.0), float(d.get("trigger_price") or 0.0)
        if exchange not in SANDBOX_EXCHANGES:
            raise analyze_error(400, f"Invalid exchange. Must be one of {', '.join(SANDBOX_EXCHANGES)}")
        if exchange in ("NSE", "BSE") and product == "NRML":
            raise analyze_error(400, f"NRML product not allowed for {exchange} equity segment. "
                                     "Use CNC for delivery or MIS for intraday.")
        if exchange in DERIVATIVE_EXCHANGES and product == "CNC":
            raise analyze_error(400, f"CNC product not allowed for {exchange} derivatives segment. "
                                     "Use NRML for carryforward or MIS for intraday.")
        if pt in ("LIMIT", "SL") and price <= 0:
            raise analyze_error(400, f"{pt} orders require price")
        if pt in ("SL", "SL-M") and trig <= 0:
            raise analyze_error(400, f"{pt} orders require trigger_price")
        key = (symbol, exchange)
        if self.derivatives is not None and exchange in DERIVATIVE_EXCHANGES:
            self.derivatives.prepare(symbol, exchange, qty, t, self.book)  # lots, freeze; its quote into the book
        if self.instruments.get(symbol, exchange) is None and not self.book.known(key):
            raise analyze_error(400, f"Symbol {symbol} not found on {exchange}")
        self.instruments.check_prices(symbol, exchange, pt, price, trig)
        cur = self._position_qty(symbol, exchange, product)
        reducing = (action == "BUY" and cur < 0) or (action == "SELL" and cur > 0)
        if product == "MIS" and self.clock_known():
            at = mis_blocked(t, exchange)
            if at is not None and not reducing:
                raise analyze_error(400, f"MIS orders cannot be placed after square-off time ({at:%H:%M} IST). "
                                         "Trading resumes at 09:00 AM IST.")
        reason = reject_reason
        held = self.holdings.quantity(symbol, exchange)
        if action == "SELL" and product == "CNC" and qty > cur + held:
            have = cur + held  # signed position: a sale waiting for settlement already used those shares
            reason = (f"Cannot sell {symbol} in CNC. No positions or holdings available. CNC (delivery) requires "
                      "existing shares. Use MIS for intraday short selling." if have <= 0 else
                      f"Cannot sell {qty} shares of {symbol} in CNC. Only {have} shares available "
                      f"(Position: {cur}, Holdings: {held})")
        q = self.book.current.get(key)
        if pt == "MARKET":
            if q is None or q.ltp <= 0:
                raise analyze_error(400, f"Cannot place MARKET order for {symbol} - unable to fetch current price. "
                                         "Please try again later or use LIMIT order with a specific price.")
            ref = q.ltp
        else:
            ref = price if pt == "LIMIT" else trig
        margin = self._margin_for(product, action, qty, ref, cur, self._order_lev(symbol, exchange, product))
        if margin > 0 and reason is None:
            avail = self.available()
            if avail < margin - 1e-9:
                raise analyze_error(400, f"Insufficient funds. Required: ₹{margin:.2f}, Available: ₹{avail:.2f}, "
                                         f"Shortage: ₹{margin - avail:.2f}")
        common = dict(symbol=symbol, exchange=exchange, action=action, quantity=qty, pricetype=pt, product=product,
                      price=ref if pt == "MARKET" else price, trigger_price=trig, strategy=d["strategy"], t=t)
        if reason is not None:
            o = self._new_order(**common, status=REJECTED, reason=reason)
            log.info("order %s rejected: %s", o["orderid"], reason)
            raise analyze_error(400, reason, orderid=o["orderid"])
        o = self._new_order(**common, status=TRIGGER_PENDING if pt in ("SL", "SL-M") else OPEN, margin=margin)
        if faults is not None and faults.active:
            o["_faults"] = [faults.delay_s, faults.parts, faults.span_s]
        self._resting.setdefault(key, []).append(o["orderid"])
        if q is not None:
            self._evaluate(o, q, t, at_placement=True)
        return o

    def _unrest(self, o: dict) -> None:
        lst = self._resting.get((o["symbol"], o["exchange"]))
        if lst and o["orderid"] in lst:
            lst.remove(o["orderid"])
            if not lst:
                del self._resting[(o["symbol"], o["exchange"])]

    def _evaluate(self, o: dict, q: Quote, t: float, at_placement: bool) -> None:
        ltp, pt, buy = q.ltp, o["pricetype"], o["action"] == "BUY"
        if quote_looks_stale(q):
            log.warning("order %s (%s): LTP %s outside the day's range [%s, %s]; stale quote, not filled",
                        o["orderid"], o["symbol"], ltp, q.low, q.high)
            return
        if pt == "MARKET":
            px = q.market_price(o["action"])
            if px > 0:
                self._start_fill(o, px, t, reprice=True)
            return
        if ltp <= 0:
            return
        if pt == "LIMIT":
            if (buy and ltp <= o["price"]) or (not buy and ltp >= o["price"]):
                self._start_fill(o, ltp if at_placement else o["price"], t)
            return
        if not o["_triggered"]:
            trig = o["trigger_price"]
            if not ((buy and ltp >= trig) or (not buy and ltp <= trig)):
                return
            o["_triggered"] = True
            o["order_status"] = OPEN
            self._touch(o)
        if pt == "SL-M" or (buy and ltp <= o["price"]) or (not buy and ltp >= o["price"]):
            self._start_fill(o, ltp, t)

    def _push_plan(self, due: float, oid: str) -> None:
        self._plan_n += 1
        heapq.heappush(self._plans, (due, self._plan_n, oid))

    def _start_fill(self, o: dict, price: float, t: float, reprice: bool = False) -> None:
        self._unrest(o)
        remaining = o["quantity"] - o["filled_quantity"]
        f = o.get("_faults")
        if not f:
            self._fill(o, remaining, price, t)
            return
        delay, parts, span = f
        k = max(1, min(parts or 1, remaining))
        base = self._wall() + (delay if o["pricetype"] == "MARKET" else 0.0)
        sizes = split_quantity(remaining, k)
        o["_plan"] = [[base + (span * i / (k - 1) if k > 1 else 0.0), n] for i, n in enumerate(sizes)]
        o["_plan_price"] = None if reprice else price
        for due, _ in o["_plan"]:
            self._push_plan(due, o["orderid"])
        self._touch(o)
        self._run_plan(o, self._wall())

    def _run_plan(self, o: dict, wall_now: float) -> None:
        plan = o.get("_plan")
        if not plan or o["order_status"] not in LIVE:
            return
        while plan and plan[0][0] <= wall_now:
            _, n = plan.pop(0)
            price = o["_plan_price"]
            if price is None:
                q = self.book.current.get((o["symbol"], o["exchange"]))
                price = q.market_price(o["action"]) if q is not None and q.market_price(o["action"]) > 0 else o["price"]
            self._fill(o, n, price, self.now())
        if not plan:
            o.pop("_plan", None)
            o.pop("_plan_price", None)
        self._touch(o)

    def _fill(self, o: dict, n: int, price: float, t: float) -> None:
        remaining = o["quantity"] - o["filled_quantity"]
        n = min(n, remaining)
        if n <= 0:
            return
        filled = o["filled_quantity"] + n
        o["average_price"] = (o["average_price"] * o["filled_quantity"] + price * n) / filled
        o["filled_quantity"] = filled
        moved = o["_margin"] * n / remaining
        o["_margin"] -= moved
        if filled >= o["quantity"]:
            o["order_status"] = COMPLETE
            o["_margin"] = 0.0
            self._live.pop(o["orderid"], None)
        self._touch(o)
        self._trade_seq += 1
        trade = {"tradeid": self._new_trade_id(t), "symbol": o["symbol"], "exchange": o["exchange"],
                 "product": o["product"], "action": o["action"], "quantity": n, "average_price": price,
                 "trade_value": n * price, "orderid": o["orderid"], "timestamp": stamp(t), "strategy": o["strategy"],
                 "_seq": self._trade_seq, "_t": t}
        self.trades.append(trade)
        self._d_trades.append((self._trade_seq, trade))
        self._apply_position(o, n, price, t, moved)

    def _new_trade_id(self, t: float) -> str:
        return f"TRADE-{datetime.fromtimestamp(t, _IST_FIXED):%Y%m%d-%H%M%S}-{self._ids.getrandbits(32):08x}"

    def _apply_position(self, o: dict, n: int, price: float, t: float, margin: float) -> None:
        """Net a fill into its position; `margin` is the share of the order's placement margin it brings."""
        pk = pos_key(o["symbol"], o["exchange"], o["product"])
        p = self.positions.get(pk)
        if p is None:
            p = self.positions[pk] = {"symbol": o["symbol"], "exchange": o["exchange"], "product": o["product"],
                                      "quantity": 0, "average_price": 0.0, "realized": 0.0, "last_price": price,
                                      "_margin": 0.0, "_opened_at": t, "_seq": len(self.positions) + 1}
        ss = session_start(t)
        if p.get("_session") != ss:
            p["_session"], p["day_realized"] = ss, 0.0
        d = n if o["action"] == "BUY" else -n
        q = p["quantity"]
        if q == 0:
            p["_opened_at"] = t
        if q == 0 or (q > 0) == (d > 0):
            new_q = q + d
            p["average_price"] = (abs(q) * p["average_price"] + abs(d) * price) / abs(new_q)
            p["_margin"] += margin
        else:
            closing = min(abs(d), abs(q))
            pnl = closing * (price - p["average_price"]) * (1 if q > 0 else -1)
            p["realized"] += pnl
            p["day_realized"] += pnl
            p["_margin"] -= p["_margin"] * closing / abs(q)
            new_q = q + d
            if new_q == 0:
                p["_margin"] = 0.0
            elif (new_q > 0) != (q > 0):
                p["average_price"] = price
                p["_margin"] = margin  # the order blocked margin for the excess only: it is the new position's
        p["quantity"] = new_q
        p["last_price"] = price
        p["_updated_at"] = t
        self._d_pos[pk] = p

    def cancel(self, o: dict) -> None:
        o["order_status"] = CANCELLED
        o["_margin"] = 0.0
        o.pop("_plan", None)
        o.pop("_plan_price", None)
        self._unrest(o)
        self._live.pop(o["orderid"], None)
        self._touch(o)

    def modify(self, o: dict, d: dict) -> None:
        if o.get("_plan"):
            raise analyze_error(400, "Cannot modify order while it is being filled")
        new_qty = int(d["quantity"])
        if self.derivatives is not None and o["exchange"] in DERIVATIVE_EXCHANGES:
            self.derivatives.quantity_rule(o["symbol"], o["exchange"], new_qty, self.now())
        if new_qty <= o["filled_quantity"]:
            raise analyze_error(400, f"Quantity must be greater than the filled quantity {o['filled_quantity']}")
        pt = o["pricetype"]
        if float(d.get("price") or 0.0) and pt not in ("LIMIT", "SL"):      # the sandbox's modify rules
            raise analyze_error(400, f"{pt} orders do not accept a price")
        if float(d.get("trigger_price") or 0.0) and pt not in ("SL", "SL-M"):
            raise analyze_error(400, f"{pt} orders do not accept a trigger_price")
        price = float(d.get("price") or 0.0) or o["price"]
        trig = float(d.get("trigger_price") or 0.0) or o["trigger_price"]
        self.instruments.check_prices(o["symbol"], o["exchange"], o["pricetype"], price, trig)
        ref = {"LIMIT": price, "SL": trig, "SL-M": trig}.get(o["pricetype"], o["price"])
        cur = self._position_qty(o["symbol"], o["exchange"], o["product"])
        margin = self._margin_for(o["product"], o["action"], new_qty - o["filled_quantity"], ref, cur,
                                  self._order_lev(o["symbol"], o["exchange"], o["product"]))
        extra = margin - o["_margin"]
        if extra > 0:
            avail = self.available()
            if avail < extra - 1e-9:
                raise analyze_error(400, f"Insufficient funds. Required: ₹{extra:.2f}, Available: ₹{avail:.2f}, "
                                         f"Shortage: ₹{extra - avail:.2f}")
        o.update(quantity=new_qty, price=price, trigger_price=trig, _margin=margin)
        self._touch(o)
        q = self.book.current.get((o["symbol"], o["exchange"]))
        if q is not None:
            self._evaluate(o, q, self.now(), at_placement=False)

    def market_close(self, p: dict, strategy: str, t: float, fallback: bool) -> dict | None:
        """Close one position with a MARKET order filled at once; None when there is no price."""
        action = "SELL" if p["quantity"] > 0 else "BUY"
        q = self.book.current.get((p["symbol"], p["exchange"]))
        px = q.market_price(action) if q is not None else 0.0
        if px <= 0:
            if not fallback:
                return None
            px = p["last_price"]
        o = self._new_order(symbol=p["symbol"], exchange=p["exchange"], action=action, quantity=abs(p["quantity"]),
                            pricetype="MARKET", product=p["product"], price=q.ltp if q else px, trigger_price=0.0,
                            strategy=strategy, t=t, status=OPEN)
        self._fill(o, o["quantity"], px, t)
        return o

    def _square_off(self, exchanges: tuple[str, ...], b: float, hhmm: str) -> None:
        cancelled = [o for o in list(self._live.values()) if o["product"] == "MIS" and o["exchange"] in exchanges]
        for o in cancelled:
            self.cancel(o)
        closed = 0
        for p in list(self.positions.values()):
            if p["product"] == "MIS" and p["exchange"] in exchanges and p["quantity"] != 0:
                self.market_close(p, SQUARE_OFF_STRATEGY, b, fallback=True)
                closed += 1
        if cancelled or closed:
            log.info("MIS square-off at %s IST (%s): %d orders cancelled, %d positions closed",
                     hhmm, stamp(b), len(cancelled), closed)

    # ------------------------------------------------------------ market data and clock

    def on_quote(self, q: Quote, t: float) -> None:
        self._d_quotes[q.key] = q
        for oid in list(self._resting.get(q.key, ())):
            o = self.orders[oid]
            if o["order_status"] in LIVE:
                self._evaluate(o, q, t, at_placement=False)
        for g in self.gtt.active() if self.gtt.gtts else ():
            if (g["symbol"], g["exchange"]) == q.key:
                self._gtt_check(g, q.ltp, t)
        if self.derivatives is not None and q.exchange in self.derivatives.quote_exchanges:
            for dq in self.derivatives.derived(q, self._held_derivatives()):
                if self.book.offer(dq):
                    self.on_quote(dq, t)

    def _held_derivatives(self) -> set[tuple[str, str]]:
        """Derivative contracts with an open position or a live order: the ones whose price must follow."""
        held = {(p["symbol"], p["exchange"]) for p in self.positions.values()
                if p["quantity"] and p["exchange"] in DERIVATIVE_EXCHANGES}
        held.update(k for k in self._resting if k[1] in DERIVATIVE_EXCHANGES)
        return held

    # ------------------------------------------------------------ GTT (paper.gtt has the rules)

    def _gtt_margin(self, d: dict, legs: list[dict], last_price: float) -> float:
        margins = [leg["quantity"] * pricing_basis(leg, last_price) / self._lev(d["product"]) for leg in legs]
        return max(margins)  # OCO: only one leg can fire (the sandbox's default 'max' mode)

    def place_gtt(self, d: dict, t: float) -> dict:
        if d["exchange"] not in SANDBOX_EXCHANGES:
            raise analyze_error(400, f"Invalid exchange. Must be one of {', '.join(SANDBOX_EXCHANGES)}")
        key = (d["symbol"], d["exchange"])
        if self.instruments.get(*key) is None and not self.book.known(key):
            raise analyze_error(400, "Symbol not found")
        legs = build_legs(d)
        q = self.book.current.get(key)
        last = q.ltp if q is not None else 0.0
        margin = self._gtt_margin(d, legs, last)
        avail = self.available()
        if margin > avail + 1e-9:
            raise analyze_error(400, f"Insufficient funds. Required: ₹{margin:.2f}, Available: ₹{avail:.2f}")
        gid = f"GTT-{to_ist(t):%y%m%d}-{self._ids.getrandbits(32):08x}"
        g = self.gtt.new(d, legs, margin, last, t, gid)
        self._d_kv = True
        log.info("GTT %s placed: %s %s, margin %.2f", gid, g["trigger_type"], d["symbol"], margin)
        return g

    def modify_gtt(self, d: dict, t: float) -> dict:
        g = self.gtt.get_active(d["trigger_id"])
        bad = self.gtt.immutable_violation(g, d)
        if bad:
            raise analyze_error(400, bad)
        legs = build_legs(d)
        if len(legs) != len(g["legs"]):
            raise analyze_error(400, f"Modify must keep the same trigger shape: this GTT has {len(g['legs'])} leg(s).")
        margin = self._gtt_margin({**d, "product": d["product"] or g["product"]}, legs, g["last_price"])
        extra = margin - g["margin_blocked"]
        avail = self.available()
        if extra > avail + 1e-9:
            raise ApiError(400, {"status": "error", "mode": "analyze", "trigger_id": g["trigger_id"],
                                 "message": f"Insufficient funds. Required: ₹{extra:.2f}, Available: ₹{avail:.2f}. "
                                            "The GTT is unchanged."})
        g.update(legs=legs, margin_blocked=margin, product=d["product"], updated_at=t)
        self._d_kv = True
        return g

    def cancel_gtt(self, gid: str, t: float) -> dict:
        g = self.gtt.get_active(gid)
        for leg in g["legs"]:
            leg["status"] = GTT_CANCELLED
        g.update(status=GTT_CANCELLED, margin_blocked=0.0, updated_at=t)
        self._d_kv = True
        return g

    def _gtt_check(self, g: dict, ltp: float, t: float) -> None:
        """Fire the first leg the LTP crossed: release the GTT's margin, place its order, cancel the sibling."""
        for i, leg in enumerate(g["legs"]):
            if leg["status"] != "pending" or not triggered(leg, ltp):
                continue
            held = g["margin_blocked"]
            g.update(status=GTT_TRIGGERED, margin_blocked=0.0, updated_at=t)
            self._d_kv = True
            order = {"symbol": g["symbol"], "exchange": g["exchange"], "action": leg["action"],
                     "quantity": leg["quantity"], "pricetype": leg["pricetype"], "product": g["product"],
                     "price": leg["price"] if leg["pricetype"] == "LIMIT" else 0.0, "trigger_price": 0.0,
                     "strategy": g["strategy"] or "GTT"}
            try:
                o = self.place(order, t)
            except ApiError as e:  # the sandbox re-arms the GTT with its margin; it may fire again
                g.update(status=GTT_ACTIVE, margin_blocked=held)
                log.warning("GTT %s: leg %d's order refused (%s); re-armed", g["trigger_id"], i + 1,
                            e.body.get("message"))
                return
            leg["status"], leg["orderid"] = GTT_TRIGGERED, o["orderid"]
            for other in g["legs"]:
                if other is not leg and other["status"] == "pending":
                    other["status"] = GTT_CANCELLED
            log.info("GTT %s: leg %d triggered at %s; order %s", g["trigger_id"], i + 1, ltp, o["orderid"])
            return

    def push(self, quotes: list[Quote], clock: float | None) -> None:
        """Apply a batch. Wall mode: at once, in time order. Replay: when the clock reaches each quote."""
        if clock is not None and self.mode == "wall":
            log.info("clock pushed: switching to replay mode")
            self.mode, self.clock = "replay", None
            self._sq_until = {}
            self._settled_until = None
            self._recompute_next_sq()
            self._d_kv = True
        if self.mode == "wall":
            t = self._wall()
            for q in sorted(quotes, key=lambda x: x.ts):
                self.book.set_current(q)
                self.on_quote(q, t)
            self._squareoff_check(t)
            return
        target = self.clock if clock is None or (self.clock is not None and clock < self.clock) else clock
        for q in quotes:
            seq = self.book.stash(q)
            if target is None or q.ts > target:
                self._persisted_future.add(seq)
                self._d_future_add.append((seq, q.row()))
        self.advance(clock)

    def advance(self, clock: float | None) -> None:
        """Move the replay clock forward (never back) and apply every quote that became current, in order."""
        if clock is not None and (self.clock is None or clock > self.clock):
            self.clock = float(clock)
            self._d_kv = True
        if self.clock is None:
            return
        while (item := self.book.pop_due(self.clock)) is not None:
            seq, q = item
            if seq in self._persisted_future:
                self._persisted_future.discard(seq)
                self._d_future_del.append(seq)
            self._squareoff_check(q.ts)
            if self.book.offer(q):
                self.on_quote(q, q.ts)
        self._squareoff_check(self.clock)

    def housekeeping(self) -> None:
        """Due partial/delayed fills, and the wall-clock square-off. Called a few times a second."""
        with self.lock:
            try:
                w = self._wall()
                while self._plans and self._plans[0][0] <= w:
                    _, _, oid = heapq.heappop(self._plans)
                    o = self.orders.get(oid)
                    if o is not None:
                        self._run_plan(o, w)
                if self.mode == "wall":
                    self._squareoff_check(w)
            finally:
                self._flush()

    def reset(self, mode: str, clock: float | None, funds: float | None) -> None:
        resets = self.funds_meta.get("reset_count", 0) + 1
        analyze, logs = self.analyze_mode, self.total_logs
        self._store.wipe()
        self._init_memory()
        self.funds_meta = {"starting_funds": float(funds) if funds is not None else self.default_funds,
                           "reset_count": resets, "last_reset": stamp(self._wall())}
        self.analyze_mode, self.total_logs = analyze, logs
        self.mode = mode
        self._d_kv = True
        if mode == "replay" and clock is not None:
            self.advance(clock)
        elif mode == "wall":
            self._squareoff_check(self._wall())
        log.info("paper broker reset (#%d): %s clock, funds %.2f", resets, mode, self.funds_meta["starting_funds"])

    def flush(self) -> None:
        self._flush()
