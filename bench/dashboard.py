"""What the dashboard costs the tick path; prints ONE JSON line.

    .venv/bin/python bench/dashboard.py [--symbols 100] [--rounds 2] [--clients 3]

Replays a synthetic day for N symbols through the real Driver as fast as it goes (eight workers, signals_only,
as bench/pipeline.py's first run), alternating runs without and with the dashboard (A B A B, same sitting);
with it, --clients event streams (in a process of their own, as browsers would be) stay connected for the whole
run. Per run: ticks/s, the driver process's CPU per tick (the trading thread lives there, and so do the
dashboard's threads: the difference is what the dashboard costs that process), and tick-to-signal latency.
The summary gives each figure's median without and with, and their ratio.
`--off-only` runs without the dashboard only (to compare with a checkout that has none).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.config import Secrets, load_config  # noqa: E402
from driver import Driver, RunOptions  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "bench" / "pipeline.py")
assert _spec is not None and _spec.loader is not None
bp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bp)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clients(port: int, token: str, n: int, stop: threading.Event) -> list[threading.Thread]:
    """n browsers' event streams: connect (retrying until the dashboard listens), read until `stop` (run in
    the client process, `--clients-for`)."""
    import requests

    def one() -> None:
        while not stop.is_set():
            try:
                with requests.get(f"http://127.0.0.1:{port}/api/events", stream=True, timeout=5,
                                  headers={"Authorization": f"Bearer {token}"}) as r:
                    for _ in r.iter_content(chunk_size=None):
                        if stop.is_set():
                            return
            except requests.RequestException:
                stop.wait(0.1)
    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def run(tmp: Path, n: int, i: int, dashboard: bool, n_clients: int) -> dict[str, Any]:
    cfg = load_config(bp.make_config(tmp, n, "off"))
    port = free_port() if dashboard else 0
    if hasattr(cfg, "dashboard"):
        cfg = dataclasses.replace(cfg, dashboard=dataclasses.replace(cfg.dashboard, port=port))
    db_url = f"sqlite:///{tmp / f'bench-{i}.sqlite'}"
    sec = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=db_url,
                  fyers_app_id=None, fyers_access_token=None)
    args = argparse.Namespace(replay="synthetic", date=bp.DAY, speed="max")
    driver = Driver(cfg, sec, RunOptions.from_args(cfg, sec, args), db_url=db_url)
    proc = subprocess.Popen([sys.executable, __file__, "--clients-for", str(port), "--clients", str(n_clients)],
                            env=os.environ.copy()) if dashboard else None
    try:
        with bp.RssSampler() as rss:
            code = driver.run()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    if code != 0:
        raise SystemExit(f"daemon exited with {code}")
    s = driver.summary
    served = getattr(driver, "dashboard", None) is not None or not dashboard
    every = driver.latencies_ms + driver.held_latencies_ms
    return {"dashboard": dashboard, "served": served, "ticks": s["dispatched"],
            "ticks_per_s": round(s["dispatched"] / s["replay_s"]),
            "driver_cpu_us_per_tick": bp.cpu_us_per_tick(rss, driver, s["dispatched"])["driver"],
            "signals": len(every), "p50_tick_to_signal_ms": bp.pct(every, 0.5),
            "p99_tick_to_signal_ms": bp.pct(every, 0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--off-only", action="store_true")
    ap.add_argument("--clients-for", type=int, default=None, help=argparse.SUPPRESS)  # the client process
    a = ap.parse_args()
    if a.clients_for is not None:
        stop = threading.Event()
        for t in clients(a.clients_for, os.environ["DASHBOARD_TOKEN"], a.clients, stop):
            t.join()
        return
    os.environ.setdefault("DASHBOARD_TOKEN", secrets.token_urlsafe(32))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as d:
        for _ in range(a.rounds):
            for on in ((False,) if a.off_only else (False, True)):
                runs.append(run(Path(d), a.symbols, len(runs), on, a.clients))
    out: dict[str, Any] = {"bench": "dashboard", "symbols": a.symbols, "clients": a.clients, "rounds": a.rounds,
                           "cpus": os.cpu_count()}
    for key in ("ticks_per_s", "driver_cpu_us_per_tick", "p50_tick_to_signal_ms", "p99_tick_to_signal_ms"):
        for on in (False, True):
            vals = [x[key] for x in runs if x["dashboard"] is on and x[key] is not None]
            if vals:
                out[f"{key}_{'on' if on else 'off'}"] = round(statistics.median(vals), 3)
        if f"{key}_on" in out and out.get(f"{key}_off"):
            out[f"{key}_on_over_off"] = round(out[f"{key}_on"] / out[f"{key}_off"], 3)
    out["runs"] = runs
    print(json.dumps(out))


if __name__ == "__main__":
    main()
