"""Order-path latency against the paper broker; prints ONE JSON line.

    .venv/bin/python bench/orders.py [--n 2000] [--official-n 200]

Starts the paper broker as a subprocess (temporary state file, random key, rate limits raised so the
limiter does not dominate), pushes quotes, then runs every function registered with @measurement; each
returns a dict of keys merged into the one JSON line. To add a figure (e.g. signal_to_ack_p50_ms through
the TradeManager), write a function taking the BenchContext and decorate it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import select
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.clock import ist_epoch  # noqa: E402
from gateway.openalgo import OpenAlgoGateway  # noqa: E402
from gateway.results import Accepted  # noqa: E402
from paper.client import PaperBrokerAdmin  # noqa: E402
from paper.launcher import start_broker, wait_ready  # noqa: E402

BENCH_DAY = date(2026, 11, 20)
UNLIMITED = ["--order-rate", "1000000", "--smart-rate", "1000000", "--api-rate", "1000000"]


@dataclass
class BenchContext:
    url: str
    key: str
    admin: PaperBrokerAdmin
    args: argparse.Namespace
    tmp: Path
    clock: float
    symbols: list[str] = field(default_factory=lambda: ["SBIN", "INFY", "TCS", "RELIANCE"])

    def gateway(self, **kw: Any) -> OpenAlgoGateway:
        kw.setdefault("order_rate_per_s", 1_000_000)
        kw.setdefault("api_rate_per_s", 1_000_000)
        return OpenAlgoGateway(self.url, self.key, **kw)


MEASUREMENTS: list[Callable[[BenchContext], dict[str, Any]]] = []


def measurement(fn: Callable[[BenchContext], dict[str, Any]]) -> Callable[[BenchContext], dict[str, Any]]:
    MEASUREMENTS.append(fn)
    return fn


def percentiles(samples_s: list[float], prefix: str) -> dict[str, float]:
    s = sorted(samples_s)
    p99 = s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]
    return {f"{prefix}_p50_ms": round(statistics.median(s) * 1000, 3), f"{prefix}_p99_ms": round(p99 * 1000, 3),
            f"{prefix}_max_ms": round(s[-1] * 1000, 3)}


def timed(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


@measurement
def gateway_placeorder(ctx: BenchContext) -> dict[str, Any]:
    """MARKET placeorder through OpenAlgoGateway (keep-alive session); includes fill and persistence."""
    gw = ctx.gateway()
    failures = 0

    def one() -> None:
        nonlocal failures
        if not isinstance(gw.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=1,
                                         strategy="bench"), Accepted):
            failures += 1

    lat = timed(one, ctx.args.n)
    out = percentiles(lat, "place")
    out["place_failures"] = failures
    out["funds_p50_ms"] = percentiles(timed(gw.funds, 200), "s")["s_p50_ms"]
    gw.close()
    return out


@measurement
def official_client_placeorder(ctx: BenchContext) -> dict[str, Any]:
    """The official openalgo 1.0.12 client opens a new connection per call (module-level httpx.post)."""
    from openalgo import api
    c = api(api_key=ctx.key, host=ctx.url)
    lat = timed(lambda: c.placeorder(strategy="bench", symbol="INFY", action="BUY", exchange="NSE",
                                     price_type="MARKET", product="MIS", quantity=1), ctx.args.official_n, warmup=5)
    return {"official_client_p50_ms": percentiles(lat, "o")["o_p50_ms"]}


@measurement
def market_push(ctx: BenchContext) -> dict[str, Any]:
    """Rows per second through /paper/v1/market in replay mode, 2,000-row batches."""
    batch, batches = 2000, 10
    t = ctx.clock
    total = 0.0
    for _ in range(batches):
        rows = []
        for i in range(batch):
            t += 0.001
            px = 500 + (i % 50) * 0.05
            rows.append([ctx.symbols[i % len(ctx.symbols)], "NSE", t, px, px - 0.05, px + 0.05, 600, 400, 500, 500, i])
        t0 = time.perf_counter()
        ctx.admin.push_market(rows, clock=t)
        total += time.perf_counter() - t0
    return {"push_rows_per_s": round(batch * batches / total)}


class StageStamps:
    """Where a signal's time to acknowledgement goes, stamped from outside the production code: the bench wraps
    public methods of this one TradeManager's broker threads (instance attributes, so nothing else pays).

    decide_write: process_signal's start to the command handed to the sender threads (the decision, the order
    written ahead and committed); handoff: to the sender thread calling the gateway (queue, thread wake-up);
    http: the gateway's placeorder (JSON, loopback round trip, the broker's own work); answer_to_applied: the
    answer reported, the loop woken, the answer taken off the queue and the acknowledgement committed (the
    order handed to the status poller); applied_to_seen: from there to the caller's wait returning (the rest
    of that poll, and any wait for the interpreter lock while the poller, woken for the order, holds it).
    CPU figures are the stage's thread CPU time (time.thread_time) on the thread that runs it;
    answer_to_applied's is from the answer taken to the acknowledgement committed."""

    STAGES = ("decide_write", "handoff", "http", "answer_to_applied", "applied_to_seen")

    def __init__(self, tm: Any):
        from execution.broker_io import Placed

        self.io, self.gw = tm.io, tm.io.gw
        self.wall: dict[str, list[float]] = {k: [] for k in self.STAGES}
        self.cpu: dict[str, list[float]] = {k: [] for k in self.STAGES}
        self._t: dict[str, float] = {}
        self._on = False
        send, place, track, answers = self.io.send, self.gw.place_order, self.io.track, self.io.events
        stamps = self

        def stamped_send(cmd: Any) -> None:
            if self._on and "send" not in self._t:
                self._t["send"], self._t["send_cpu"] = time.perf_counter(), time.thread_time()
            send(cmd)

        def stamped_place(**kw: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            res = place(**kw)
            if self._on and "http0" not in self._t:
                self._t["http0"], self._t["http1"] = t0, time.perf_counter()
                self._t["http_cpu"] = time.thread_time() - c0
            return res

        class StampedAnswers:
            def put(self, ev: Any) -> None:
                answers.put(ev)

            def get_nowait(self) -> Any:
                ev = answers.get_nowait()
                if stamps._on and isinstance(ev, Placed):
                    stamps._t["taken_cpu"] = time.thread_time()
                return ev

            def empty(self) -> bool:
                return answers.empty()

        def stamped_track(order_id: int, broker_order_id: str, strategy: str) -> None:
            if self._on and "applied" not in self._t:
                self._t["applied"], self._t["applied_cpu"] = time.perf_counter(), time.thread_time()
            track(order_id, broker_order_id, strategy)

        self.io.send, self.gw.place_order, self.io.track = stamped_send, stamped_place, stamped_track
        self.io.events = StampedAnswers()
        self._answers = answers

    def detach(self) -> None:
        for obj, name in ((self.io, "send"), (self.gw, "place_order"), (self.io, "track")):
            obj.__dict__.pop(name, None)
        self.io.events = self._answers

    def begin(self) -> None:
        assert threading.current_thread() is threading.main_thread()
        self._t = {"t0": time.perf_counter(), "cpu0": time.thread_time()}
        self._on = True

    def end(self) -> None:
        """Called as soon as the signal's wait for its acknowledgement returned."""
        done = time.perf_counter()
        self._on = False
        t = self._t
        if not all(k in t for k in ("send", "http0", "applied", "taken_cpu")):
            return  # an order that was not placed (denied): no stages
        for k, v in (("decide_write", t["send"] - t["t0"]), ("handoff", t["http0"] - t["send"]),
                     ("http", t["http1"] - t["http0"]), ("answer_to_applied", t["applied"] - t["http1"]),
                     ("applied_to_seen", done - t["applied"])):
            self.wall[k].append(v)
        self.cpu["decide_write"].append(t["send_cpu"] - t["cpu0"])
        self.cpu["http"].append(t["http_cpu"])
        self.cpu["answer_to_applied"].append(t["applied_cpu"] - t["taken_cpu"])

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for k in self.STAGES:
            if self.wall[k]:
                out[f"{k}_p50_ms"] = round(statistics.median(self.wall[k]) * 1000, 3)
            if self.cpu[k]:
                out[f"{k}_cpu_p50_ms"] = round(statistics.median(self.cpu[k]) * 1000, 3)
        return out


@measurement
def trade_manager_path(ctx: BenchContext) -> dict[str, Any]:
    """Through the TradeManager: signal -> risk -> order recorded -> sent -> acknowledged, and a burst of 50
    simultaneous entry signals against the daemon's own order rate limit (config orders.rate_limit_per_s) and
    request budget (orders.broker_requests_per_s), the 50 orders staying open: the broker counts every request
    it receives during the burst and three poll intervals after it."""
    import copy

    import yaml

    import db
    from core.config import Secrets, parse_config
    from core.enums import PositionSide, SignalType, TradingState
    from core.types import Signal
    from trade_manager import TradeManager

    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    names = [f"B{i:03d}" for i in range(60)]
    raw["symbols"] = names
    raw["risk"].update(capital=1e9, max_allocation=1e6, max_active_trades=100, max_order_notional=1e7,
                       cooldown_minutes=0, global_max_loss_pct=None, global_max_profit_pct=None,
                       daily_loss_limit=None, max_drawdown_pct=None)
    cfg = parse_config(raw)
    ctx.admin.push_market([[n, "NSE", ctx.clock, 500.0, 499.95, 500.05, 510, 490, 500, 500, 0] for n in names],
                          clock=ctx.clock)
    url = f"sqlite:///{ctx.tmp / 'tm.sqlite'}"
    handler = db.DBHandler(db.initialize_database(url))
    secrets_ = Secrets(app_key=ctx.key, host_server=ctx.url, live_data=False, database_url=url, fyers_app_id=None,
                       fyers_access_token=None)
    tm = TradeManager(cfg, secrets_, handler, None, clock=None, replay=False, day=BENCH_DAY)
    tm.rm.load()
    tm.io.start()
    tm.rm.set_state(TradingState.ACTIVE, "bench")
    t_sig = int(ctx.clock)

    def signal(sym: str, kind: SignalType, t: int) -> Signal:
        return Signal(symbol=sym, time=t, price=500.0, type=kind, current_position=PositionSide.LONG,
                      strategy="bench", stop_loss=495.0)

    def wait_acked(order_ids: set[int]) -> None:
        """As the driver's loop does: apply the broker threads' events when their wake-up byte arrives."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tm.io.take_wakes()
            tm.poll()
            if all(tm.pending.get(i) is None or tm.pending[i].broker_order_id for i in order_ids):
                return
            select.select([tm.io.wake_fd], [], [], 0.02)
        raise RuntimeError("orders not acknowledged within 60 s")

    def new_orders(before: set[int]) -> set[int]:
        return set(tm.pending) - before

    lat = []
    stages = StageStamps(tm)
    spinning = threading.Event()
    if ctx.args.busy_thread:  # stands in for the trading thread computing on ticks while orders are in flight
        spinning.set()

        def spin() -> None:
            x = 0
            while spinning.is_set():
                for j in range(1000):
                    x += j

        threading.Thread(target=spin, name="bench-busy", daemon=True).start()
    try:
        for i in range(ctx.args.ack_signals):  # two orders per round, spaced so the 8/s rate limit never queues them
            t_round = time.perf_counter()
            sym = names[i % 5]
            before = set(tm.pending)
            stages.begin()
            t0 = time.perf_counter()
            tm.process_signal(signal(sym, SignalType.ENTRY, t_sig + 2 * i))
            wait_acked(new_orders(before))
            lat.append(time.perf_counter() - t0)
            stages.end()
            while tm.pending:  # let the entry fill, then flatten (not timed)
                tm.poll()
                time.sleep(0.0005)
            tm.process_signal(signal(sym, SignalType.EXIT, t_sig + 2 * i + 1))
            while tm.pending or tm.rm.trade_for(sym):
                tm.poll()
                time.sleep(0.0005)
            time.sleep(max(0.0, 0.3 - (time.perf_counter() - t_round)))
        spinning.clear()
        out = percentiles(lat, "signal_to_ack")
        out.update(stages.summary())
        out["busy_thread"] = ctx.args.busy_thread
        stages.detach()
        if ctx.args.no_burst:
            return out
        ctx.admin.set_faults(open_delay_s=120)  # the burst's orders stay open: 50 orders to follow meanwhile
        ctx.admin.requests_seen(clear=True)
        before = set(tm.pending)
        t0 = time.perf_counter()
        for n in names[10:60]:
            tm.process_signal(signal(n, SignalType.ENTRY, t_sig + 1000))
        wait_acked(new_orders(before))
        out["burst50_s"] = round(time.perf_counter() - t0, 3)
        t_end = time.monotonic() + 3 * cfg.orders.poll_interval_s  # and a few poll rounds with 50 open
        while time.monotonic() < t_end:
            tm.poll()
            time.sleep(0.005)
        seen = ctx.admin.requests_seen()
        ctx.admin.clear_faults()
        # the most requests the broker received in any one second (every endpoint), and what was allowed
        out["broker_requests_per_s_max"] = seen["max_per_s"]
        out["broker_requests_budget_per_s"] = cfg.orders.broker_requests_per_s
        out["burst50_requests"] = seen["total"]
        # the floor OpenAlgo's 10 orders/s moving window sets: 10 at once, then 10 more each second
        out["burst50_floor_s"] = round((50 - 10) / 10, 3)
        out["burst50_daemon_limit_per_s"] = cfg.orders.rate_limit_per_s
    finally:
        spinning.clear()
        tm.stop()
    return out


@measurement
def signals_only_decision(ctx: BenchContext) -> dict[str, Any]:
    """One TradeManager decision in signals_only mode on SQLite: the signal recorded, sized, checked, its
    order recorded (and failed as not sent) and its outcome written, per signal; alternating entries and
    exits over 50 symbols."""
    import copy

    import yaml

    import db
    from core.config import Secrets, parse_config
    from core.enums import PositionSide, SignalType, TradingState
    from core.types import Signal
    from trade_manager import TradeManager

    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    names = [f"D{i:03d}" for i in range(50)]
    raw["symbols"] = names
    raw["mode"] = "signals_only"
    raw["risk"].update(capital=1e9, max_allocation=1e6, max_active_trades=100, max_order_notional=1e7,
                       cooldown_minutes=0, global_max_loss_pct=None, global_max_profit_pct=None,
                       daily_loss_limit=None, max_drawdown_pct=None)
    cfg = parse_config(raw)
    url = f"sqlite:///{ctx.tmp / 'decide.sqlite'}"
    handler = db.DBHandler(db.initialize_database(url))
    secrets_ = Secrets(app_key=ctx.key, host_server=ctx.url, live_data=False, database_url=url, fyers_app_id=None,
                       fyers_access_token=None)
    tm = TradeManager(cfg, secrets_, handler, None, clock=None, replay=False, day=BENCH_DAY)
    tm.rm.load()
    tm.rm.set_state(TradingState.ACTIVE, "bench")
    t_sig = int(ctx.clock)
    lat = []
    for i in range(ctx.args.decisions):
        sym = names[(i // 2) % len(names)]
        kind = SignalType.ENTRY if i % 2 == 0 else SignalType.EXIT
        sig = Signal(symbol=sym, time=t_sig + i, price=500.0, type=kind, current_position=PositionSide.LONG,
                     strategy="bench", stop_loss=495.0 if kind is SignalType.ENTRY else None)
        t0 = time.perf_counter()
        tm.process_signal(sig)
        lat.append(time.perf_counter() - t0)
    tm.stop()
    done = handler.execute_sql("SELECT COUNT(*) FROM stock_signals WHERE outcome IS NOT NULL")[0][0]
    if done != ctx.args.decisions:
        raise RuntimeError(f"{done} of {ctx.args.decisions} signals got an outcome")
    pct = percentiles(lat, "decision")
    return {"decision_ms_p50": pct["decision_p50_ms"], "decision_ms_p99": pct["decision_p99_ms"],
            "decisions": ctx.args.decisions}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="placeorder calls through the gateway")
    p.add_argument("--official-n", type=int, default=200, help="placeorder calls through the official client")
    p.add_argument("--decisions", type=int, default=1000, help="signals_only decisions timed")
    p.add_argument("--ack-signals", type=int, default=60, help="signals timed to their acknowledgement")
    p.add_argument("--busy-thread", action="store_true",
                   help="a thread computing beside the TradeManager while signals are timed to their ack")
    p.add_argument("--no-burst", action="store_true", help="trade_manager_path without the 50-order burst")
    p.add_argument("--only", action="append", default=[], help="run only this measurement (repeatable)")
    p.add_argument("--port", type=int, default=0, help="broker port (default: a free one)")
    args = p.parse_args(argv)
    import socket
    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as d:
        tmp = Path(d)
        proc = start_broker(port, state_file=tmp / "broker.sqlite", api_key=key,
                            args=UNLIMITED + ["--log-level", "WARNING"], log_file=tmp / "broker.log")
        try:
            url = f"http://127.0.0.1:{port}"
            admin = PaperBrokerAdmin(url, key)
            wait_ready(proc, admin, timeout_s=30)
            clock = float(ist_epoch(BENCH_DAY, dtime(10, 0)))
            admin.reset("replay", clock, funds=1e12)
            admin.push_market([[s, "NSE", clock, 500.0, 499.95, 500.05, 510, 490, 500, 500, 0]
                               for s in ["SBIN", "INFY", "TCS", "RELIANCE"]], clock=clock)
            ctx = BenchContext(url=url, key=key, admin=admin, args=args, tmp=tmp, clock=clock)
            result: dict[str, Any] = {"bench": "orders", "n": args.n, "official_n": args.official_n,
                                      "python": platform.python_version(), "cpus": os.cpu_count()}
            for m in MEASUREMENTS:
                if not args.only or m.__name__ in args.only:
                    result.update(m(ctx))
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
