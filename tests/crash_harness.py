"""The crash-safety loop, shared by tests/test_crash_safety.py and bench/soak.py: the real daemon on the short
replayed day against a real paper broker, killed with SIGKILL again and again (after a random wall time, or
exactly at a DAEMON_CRASH_AT crash point), restarted each time, then left alone to finish the day; and the
invariants the broker's books and the database must then satisfy (`invariants`, also used by the other
fault tests).
"""
from __future__ import annotations

import random
import secrets
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.openalgo import OpenAlgoGateway
from gateway.results import Ok
from tests.daemon_harness import rows, short_day_config, start_daemon
from tests.paper_fixtures import Broker

CRASH_POINTS = ("order_committed", "order_acknowledged", "fill_seen")
SPEED = "600"          # the 90-minute day in ~9 s: random kills land anywhere in start-up, replay and close
KILL_AFTER_S = (1.0, 9.0)


# ------------------------------------------------------------------------------------------ invariants

def _books(b: Broker) -> tuple[list[Any], list[Any], list[Any]]:
    gw = OpenAlgoGateway(b.url, b.key)
    try:
        ob, tb, pb = gw.orderbook(), gw.tradebook(), gw.positionbook()
    finally:
        gw.close()
    for name, res in (("orderbook", ob), ("tradebook", tb), ("positionbook", pb)):
        if not isinstance(res, Ok):
            raise RuntimeError(f"the paper broker did not answer {name}: {res}")
    return ob.value, tb.value, pb.value


def invariants(db_url: str, b: Broker) -> dict[str, Any]:
    """What the broker did against what the database recorded; every count is 0 (and capital_ok True) when
    nothing was lost or duplicated. `problems` says what differs, for an assertion message."""
    orderbook, tradebook, positions = _books(b)
    problems: list[str] = []
    ours = rows(db_url, "SELECT o.broker_order_id, o.filled_quantity, o.average_price, "
                        "(SELECT COALESCE(SUM(f.quantity), 0) FROM fills f WHERE f.order_id = o.id) "
                        "FROM orders o WHERE o.broker_order_id IS NOT NULL")
    our_ids = [r[0] for r in ours]
    # duplicates: a signal acted on twice, a client order id or a broker order id recorded twice
    dup = rows(db_url, "SELECT signal_id, COUNT(*) FROM orders WHERE broker_order_id IS NOT NULL AND "
                       "signal_id IS NOT NULL GROUP BY signal_id HAVING COUNT(*) > 1")
    dup += rows(db_url, "SELECT client_order_id, COUNT(*) FROM orders GROUP BY client_order_id HAVING COUNT(*) > 1")
    dup += [(i, n) for i, n in _count(our_ids).items() if n > 1]
    if dup:
        problems.append(f"duplicates: {dup[:5]}")
    # every order the broker received is recorded (and nothing is recorded as sent that it never got)
    broker_ids = {o.orderid for o in orderbook}
    unrecorded = sorted(broker_ids - set(our_ids))
    phantom = sorted(set(our_ids) - broker_ids)
    if unrecorded or phantom:
        problems.append(f"broker orders not in the database: {unrecorded[:5]}; recorded but unknown to the "
                        f"broker: {phantom[:5]}")
    # fills: the broker's filled quantity and price per order = the order row = its fills rows
    traded: dict[str, int] = defaultdict(int)
    for t in tradebook:
        traded[t.orderid] += t.quantity
    book = {o.orderid: o for o in orderbook}
    fill_bad = []
    for oid, filled, avg, fills_sum in ours:
        o = book.get(oid)
        if o is None:
            continue
        same_price = not filled or (avg is not None and abs(float(avg) - o.average_price) < 0.01)
        if not (filled == o.filled_quantity == traded.get(oid, 0) == fills_sum) or not same_price:
            fill_bad.append((oid, filled, fills_sum, o.filled_quantity, traded.get(oid, 0), avg, o.average_price))
    if fill_bad:
        problems.append(f"fills differ (id, ours, our fills, broker order, broker trades, our avg, broker avg): "
                        f"{fill_bad[:5]}")
    # positions: the database's open trades = the broker's positionbook
    broker_open = {p.symbol: p.quantity for p in positions if p.quantity}
    db_open: dict[str, int] = defaultdict(int)
    for s, side, q in rows(db_url, "SELECT symbol, side, remaining_quantity FROM active_trades"):
        db_open[s] += q if side == "long" else -q
    pos_bad = sorted(s for s in set(broker_open) | set(db_open) if broker_open.get(s, 0) != db_open.get(s, 0))
    if pos_bad:
        problems.append(f"positions differ: broker {broker_open}, database {dict(db_open)}")
    # capital: the last capital = starting capital + realized P&L net of costs
    last = rows(db_url, "SELECT starting_capital, capital FROM capital_log ORDER BY id DESC LIMIT 1")
    net = rows(db_url, "SELECT COALESCE(SUM(net_pnl), 0) FROM trade_log")[0][0]
    capital_ok = bool(last) and _rupees(last[0][1]) == _rupees(Decimal(str(last[0][0])) + Decimal(str(net)))
    if not capital_ok:
        problems.append(f"capital {last} does not reconcile with net P&L {net}")
    no_outcome = rows(db_url, "SELECT COUNT(*) FROM stock_signals WHERE outcome IS NULL")[0][0]
    if no_outcome:
        problems.append(f"{no_outcome} signal(s) without an outcome")
    return {"duplicates": len(dup), "unrecorded_orders": len(unrecorded), "phantom_orders": len(phantom),
            "fill_mismatches": len(fill_bad), "position_mismatches": len(pos_bad), "capital_ok": capital_ok,
            "signals_without_outcome": no_outcome, "orders_at_broker": len(broker_ids),
            "open_positions": len(db_open) + len(broker_open), "problems": problems}


def assert_whole_and_flat(db_url: str, b: Broker, more_orders_than: int = 0,
                          inv: dict[str, Any] | None = None) -> None:
    """The end-of-day proof of every fault test: nothing lost or duplicated between the broker and the
    database, the books reconcile, and no trade is left open."""
    from tests.test_daemon_replay import check_books

    inv = invariants(db_url, b) if inv is None else inv
    assert inv["problems"] == [] and inv["orders_at_broker"] > more_orders_than, inv
    check_books(db_url, b)
    assert rows(db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0


def _count(items: list[str]) -> dict[str, int]:
    n: dict[str, int] = defaultdict(int)
    for i in items:
        n[i] += 1
    return n


def _rupees(v: Any) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"))


# ------------------------------------------------------------------------------------------ the loop

@dataclass
class CrashResult:
    seed: int
    kills: int = 0             # runs ended by SIGKILL (random moment or crash point)
    kills_survived: int = 0    # kills in rounds that then finished the day with every invariant holding
    restarts: int = 0          # daemon starts after a kill
    runs: int = 0
    rounds: int = 0            # days replayed to the end (each on a fresh database and broker)
    duplicates: int = 0
    position_mismatches: int = 0
    fill_mismatches: int = 0
    unrecorded_orders: int = 0
    capital_mismatches: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    last_round: dict[str, Any] = field(default_factory=dict)  # workdir, db_url, broker, invariants, output

    def summary(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "last_round"}
        d["elapsed_s"] = round(self.elapsed_s, 1)
        return d


def crash_round(workdir: Path, rng: random.Random, kills: int, result: CrashResult,
                deadline: float | None = None, keep_broker: bool = False,
                say: Callable[[str], None] = lambda s: None) -> None:
    """One day: SIGKILL the daemon `kills` times (every third run at a crash point, the others after a random
    wall time), then one run left alone to finish the day; then check the invariants. At most 2*kills+3 runs
    (a run may finish before its kill lands), fewer once `deadline` (monotonic) passes."""
    workdir.mkdir(parents=True, exist_ok=True)
    b = Broker(workdir / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=workdir / "broker.log").start()
    cfg = short_day_config(workdir)
    db_url = f"sqlite:///{workdir / 'd.sqlite'}"
    env = {"HOST_SERVER": b.url, "APP_KEY": b.key}
    result.last_round = {"workdir": workdir, "db_url": db_url, "broker": b}
    round_kills, i, ok, killed = 0, 0, False, False
    try:
        while round_kills < kills and i < 2 * kills + 3 and (deadline is None or time.monotonic() < deadline):
            crash_at = f"{CRASH_POINTS[(i // 3) % len(CRASH_POINTS)]}:{rng.randint(1, 3)}" if i % 3 == 1 else None
            p = start_daemon(cfg, db_url, {**env, **({"DAEMON_CRASH_AT": crash_at} if crash_at else {})},
                             args=["--speed", SPEED])
            result.runs += 1
            result.restarts += killed
            if crash_at is None:
                try:
                    p.wait(timeout=rng.uniform(*KILL_AFTER_S))
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGKILL)
            out = _finish(p, 120)
            i += 1
            killed = p.returncode == -signal.SIGKILL
            if out is None:
                result.errors.append(f"daemon hung (run {result.runs}, crash_at={crash_at})")
                return
            if killed:
                round_kills += 1
                result.kills += 1
                say(f"kill {result.kills} ({crash_at or 'random moment'})")
            elif p.returncode != 0 or "Traceback" in out:
                # a run killed while spawning leaves its half-started children's complaints; a finished one none
                result.errors.append(f"run {result.runs} (crash_at={crash_at}) exited {p.returncode}:\n{out[-3000:]}")
                return
        p = start_daemon(cfg, db_url, env, args=["--speed", SPEED])  # the run left alone to finish the day
        result.runs += 1
        result.restarts += killed
        out = _finish(p, 240)
        if out is None or p.returncode != 0 or "Traceback" in out:
            result.errors.append(f"the final run did not finish the day cleanly (exit "
                                 f"{None if out is None else p.returncode}):\n{(out or '')[-3000:]}")
            return
        inv = invariants(db_url, b)
        result.rounds += 1
        result.duplicates += inv["duplicates"]
        result.position_mismatches += inv["position_mismatches"]
        result.fill_mismatches += inv["fill_mismatches"]
        result.unrecorded_orders += inv["unrecorded_orders"] + inv["phantom_orders"]
        result.capital_mismatches += not inv["capital_ok"]
        if inv["problems"] or inv["open_positions"]:
            result.errors.append(f"round in {workdir}: {inv['problems'] or 'positions left open'}")
        else:
            ok = True
        result.last_round.update(invariants=inv, output=out)
    except BaseException:
        keep_broker = False  # nobody will get to stop it
        raise
    finally:
        if ok:
            result.kills_survived += round_kills
        if not keep_broker:
            b.stop()


def crash_loop(workdir: Path, *, kills: int | None = None, minutes: float | None = None, seed: int = 20261121,
               per_round: int = 10, keep_broker: bool = False,
               say: Callable[[str], None] = lambda s: None) -> CrashResult:
    """`kills` SIGKILLs (in rounds of at most `per_round`), or as many as fit in `minutes` of wall time;
    each round is a fresh day (database and broker). keep_broker leaves the last round's broker running
    (the caller stops result.last_round['broker'])."""
    if kills is None and minutes is None:
        raise ValueError("give kills or minutes")
    rng = random.Random(seed)
    result = CrashResult(seed=seed)
    t0 = time.monotonic()
    deadline = None if minutes is None else t0 + minutes * 60
    n = 0
    while not result.errors:
        want = per_round if kills is None else min(per_round, kills - result.kills)
        if want <= 0 or (deadline is not None and time.monotonic() >= deadline):
            break
        last = kills is not None and want >= kills - result.kills
        before = result.kills
        crash_round(workdir / f"round-{n}", rng, want, result, deadline, keep_broker=keep_broker and last, say=say)
        n += 1
        if result.kills == before and not result.errors and (deadline is None or time.monotonic() < deadline):
            result.errors.append(f"no kill landed in {2 * want + 3} runs: the day ends before the kills")
    result.elapsed_s = time.monotonic() - t0
    return result


def _finish(p: subprocess.Popen, timeout: float) -> str | None:
    """The run's output once it has ended; None (after stopping it) if it does not end in time."""
    try:
        out, _ = p.communicate(timeout=timeout)
        return out or ""
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
        return None
