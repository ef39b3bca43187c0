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
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, time as dtime
from pathlib import Path
from typing import Any, Callable

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="placeorder calls through the gateway")
    p.add_argument("--official-n", type=int, default=200, help="placeorder calls through the official client")
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
                result.update(m(ctx))
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
