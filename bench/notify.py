"""What a notification costs the thread that emits it; prints ONE JSON line.

    .venv/bin/python bench/notify.py [--n 20000]

emit with no notifier installed (the default: no URL configured), and with one installed whose only URL never
answers (a local server that holds every request), so the figure is what the trading thread pays whatever the
endpoint does; and the time from emit to arrival at a local JSON webhook that answers at once.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import notify  # noqa: E402
from notify.config import Channel, NotificationsConfig  # noqa: E402
from notify.events import Event, Level, PositionClosed  # noqa: E402
from notify.notifier import Notifier  # noqa: E402
from tests.notify_receiver import Receiver  # noqa: E402


def event(i: int) -> PositionClosed:
    return PositionClosed("SBIN", "LONG", i, Decimal("812.5"), Decimal("820.25"), Decimal("712.34"), "signal",
                          Decimal("1000712.34"))


def timed(fn: Callable[[Event], None], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(event(i))
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))], 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    res: dict[str, float] = {}
    off = timed(notify.emit, n)
    res.update(emit_uninstalled_p50_us=pct(off, 0.5), emit_uninstalled_p99_us=pct(off, 0.99),
               emit_uninstalled_max_us=round(max(off), 1))
    with Receiver() as r:
        cfg = NotificationsConfig(storm_limit=10**9, queue_size=n + 10)
        hang = Notifier(cfg, [Channel("urls[0] (json)", r.url("hang"), Level.INFO, ())])
        hang.start()
        on = timed(hang.emit, n)
        res.update(emit_hanging_url_p50_us=pct(on, 0.5), emit_hanging_url_p99_us=pct(on, 0.99),
                   emit_hanging_url_max_us=round(max(on), 1))
        r.release.set()
        hang.close(timeout_s=0.5)
        live = Notifier(cfg, [Channel("urls[0] (json)", r.url("hook"), Level.INFO, ())])
        live.start()
        lat = []
        for i in range(50):
            before = len(r.messages())
            t0 = time.perf_counter()
            live.emit(event(i))
            r.wait_for(lambda: len(r.messages()) > before)  # noqa: B023 - called at once, in this iteration
            lat.append((time.perf_counter() - t0) * 1e3)
        live.close()
        res.update(delivered_p50_ms=round(statistics.median(lat), 2), delivered_max_ms=round(max(lat), 2))
    print(json.dumps({"bench": "notify", "n": n, **res}))


if __name__ == "__main__":
    main()
