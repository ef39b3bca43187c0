"""What the dashboard costs the tick path; prints ONE JSON line.

    .venv/bin/python bench/dashboard.py [--symbols 100] [--rounds 2] [--clients 3] [--port N]

Replays a synthetic day for N symbols through the real Driver as fast as it goes (eight workers, signals_only,
as bench/pipeline.py's first run), alternating runs without and with the dashboard (A B A B, same sitting);
with it, --clients event streams (in a process of their own, as browsers would be, started and ready before the
run: its interpreter's start is not in the run) stay connected for the whole run, each reading the stream line
by line with http.client as a thin consumer would. Per run: ticks/s, CPU per tick by process of the daemon
(driver, feed, workers, Manager, the dashboard's own process -- whole, and `dashboard_after_start` from the
feed's start on --, and their sum `daemon`) apart from the clients' (`clients`: the process during the run;
`clients_streaming`: from its first event on) and, inside the driver, by thread (the
trading thread, dashboard threads -- none since the dashboard has a process of its own --, the rest), and
tick-to-signal latency. The summary gives each figure's median without and with, their ratio, and the run-to-run
noise of the same setting (each off run over the one before it, `ticks_per_s_off_over_off`): the dashboard's cost is
only measurable where on/off lies outside that noise.
`--off-only` runs without the dashboard only (to compare with a checkout that has none).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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


def clients(port: int, token: str, n: int, stop: threading.Event, got: dict[str, int]) -> list[threading.Thread]:
    """n browsers' event streams: connect (retrying every 0.5 s, as a browser does, until the dashboard listens),
    read line by line with http.client until `stop` (run in the client process, `--clients-for`); `got` counts
    the bytes and the events of each part received."""
    import http.client

    lock = threading.Lock()

    def one() -> None:
        while not stop.is_set():
            part = "other"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {token}"})
                r = conn.getresponse()
                if r.status != 200:
                    raise OSError(f"HTTP {r.status}")
                while not stop.is_set():
                    line = r.readline()
                    if not line:
                        break
                    with lock:
                        if line.startswith(b"event: "):
                            part = line[7:].strip().decode()
                            got.setdefault("cpu_ms_at_first_event", round(time.process_time() * 1000))
                            got[f"events_{part}"] = got.get(f"events_{part}", 0) + 1
                        got[f"bytes_{part}"] = got.get(f"bytes_{part}", 0) + len(line)
            except (OSError, http.client.HTTPException):
                stop.wait(0.5)  # not listening yet: a browser's retry, not a busy loop beside the start-up
            finally:
                conn.close()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


class ThreadCpu:
    """CPU seconds of this process's threads by role, sampled every 0.25 s from /proc (a thread's last sample
    stands once it ends): "trading" (the main thread), "dashboard" (the server, the hub and their helpers),
    "other" (supervisor, senders, log sink...)."""

    def __init__(self) -> None:
        self.cpu: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="bench-thread-cpu", daemon=True)

    @staticmethod
    def role(name: str) -> str:
        if name == "MainThread":
            return "trading"
        if name.startswith(("dashboard", "asyncio")):
            return "dashboard"
        return "other"

    def _sample(self) -> None:
        clk = os.sysconf("SC_CLK_TCK")
        for t in threading.enumerate():
            tid = t.native_id
            if tid is None or t is self._t:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.cpu[tid] = (self.role(t.name), (int(fields[11]) + int(fields[12])) / clk)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def __enter__(self) -> ThreadCpu:
        self._sample()
        self.start = dict(self.cpu)
        self._t.start()
        return self

    def __exit__(self, *a: object) -> None:
        self._stop.set()
        self._t.join()

    def us_per_tick(self, ticks: int) -> dict[str, float]:
        out = {"trading": 0.0, "dashboard": 0.0, "other": 0.0}
        for tid, (role, c) in self.cpu.items():
            out[role] += c - self.start.get(tid, (role, 0.0))[1]
        return {k: round(v / max(ticks, 1) * 1e6, 2) for k, v in out.items()}


def run(tmp: Path, n: int, i: int, dashboard: bool, n_clients: int, port: int = 0) -> dict[str, Any]:
    cfg = load_config(bp.make_config(tmp, n, "off"))
    port = (port or free_port()) if dashboard else 0
    if hasattr(cfg, "dashboard"):
        cfg = dataclasses.replace(cfg, dashboard=dataclasses.replace(cfg.dashboard, port=port))
    db_url = f"sqlite:///{tmp / f'bench-{i}.sqlite'}"
    sec = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=db_url,
                  fyers_app_id=None, fyers_access_token=None)
    args = argparse.Namespace(replay="synthetic", date=bp.DAY, speed="max")
    driver = Driver(cfg, sec, RunOptions.from_args(cfg, sec, args), db_url=db_url)
    proc = None
    if dashboard:  # the clients' process is started, and has imported what it needs, before the run is timed
        proc = subprocess.Popen([sys.executable, __file__, "--clients-for", str(port), "--clients", str(n_clients)],
                                env=os.environ.copy(), stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the clients' process did not start")
    clients_cpu0 = (bp.cpu_s(proc.pid) or 0.0) if proc is not None else 0.0  # its start-up: not the run's
    received: dict[str, int] = {}
    at_feed: dict[str, float] = {}
    done = threading.Event()

    def feed_started() -> None:  # the dashboard process's CPU when the feed starts: its start-up, not the ticks'
        while not done.wait(0.02):
            pid = getattr(driver, "pids", {}).get("dashboard") if driver.started else None
            if pid is not None:
                at_feed["dashboard"] = bp.cpu_s(pid) or 0.0
                return
    watcher = threading.Thread(target=feed_started, daemon=True)
    watcher.start()
    try:
        with bp.RssSampler() as rss, ThreadCpu() as threads:
            code = driver.run()
        done.set()
    finally:
        if proc is not None:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
            received = json.loads(out) if out.strip() else {}
    if code != 0:
        raise SystemExit(f"daemon exited with {code}")
    s = driver.summary
    served = getattr(driver, "dashboard", None) is not None or not dashboard
    every = driver.latencies_ms + driver.held_latencies_ms
    ticks = s["dispatched"]
    by_process = bp.cpu_us_per_tick(rss, driver, ticks)

    def us(pid: int | None) -> float:
        return round(rss.cpu.get(pid, 0.0) / max(ticks, 1) * 1e6, 2) if pid is not None else 0.0
    by_process["manager"] = us(driver.pids.get("manager"))
    by_process["dashboard"] = us(driver.pids.get("dashboard"))  # the dashboard's own process (none when off)
    if "dashboard" in at_feed:  # from the feed's start on: without its interpreter's start and imports
        by_process["dashboard_after_start"] = round(max(rss.cpu.get(driver.pids["dashboard"], 0.0)
                                                        - at_feed["dashboard"], 0.0) / max(ticks, 1) * 1e6, 2)
    else:
        by_process["dashboard_after_start"] = 0.0
    by_process["daemon"] = round(sum(by_process[k] for k in ("driver", "feed", "workers", "manager", "dashboard")), 2)
    by_process["clients"] = round(max(rss.cpu.get(proc.pid, 0.0) - clients_cpu0, 0.0) / max(ticks, 1) * 1e6, 2) \
        if proc is not None else 0.0
    if "cpu_ms_at_end" in received:  # the streams' own work, without the interpreter's start and the retries
        streaming_ms = received["cpu_ms_at_end"] - received.get("cpu_ms_at_first_event", received["cpu_ms_at_end"])
        by_process["clients_streaming"] = round(streaming_ms * 1000 / max(ticks, 1), 2)
    elif proc is None:
        by_process["clients_streaming"] = 0.0
    return {"dashboard": dashboard, "served": served, "ticks": s["dispatched"],
            "ticks_per_s": round(s["dispatched"] / s["replay_s"]),
            "driver_cpu_us_per_tick": by_process["driver"], "daemon_cpu_us_per_tick": by_process["daemon"],
            "cpu_us_per_tick": by_process,
            "driver_threads_cpu_us_per_tick": threads.us_per_tick(ticks),
            "signals": len(every), "p50_tick_to_signal_ms": bp.pct(every, 0.5),
            "p99_tick_to_signal_ms": bp.pct(every, 0.99), "received_by_clients": received}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--off-only", action="store_true")
    ap.add_argument("--port", type=int, default=0, help="the dashboard's port (default: any free one)")
    ap.add_argument("--clients-for", type=int, default=None, help=argparse.SUPPRESS)  # the client process
    a = ap.parse_args()
    if a.clients_for is not None:
        stop, got = threading.Event(), dict[str, int]()

        def report(*_: object) -> None:  # terminated by the bench: say what the streams received
            got["cpu_ms_at_end"] = round(time.process_time() * 1000)
            sys.stdout.write(json.dumps(got) + "\n")
            sys.stdout.flush()
            os._exit(0)
        signal.signal(signal.SIGTERM, report)
        sys.stdout.write("ready\n")  # imports done: the bench starts the daemon now
        sys.stdout.flush()
        for t in clients(a.clients_for, os.environ["DASHBOARD_TOKEN"], a.clients, stop, got):
            t.join()
        return
    os.environ.setdefault("DASHBOARD_TOKEN", secrets.token_urlsafe(32))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as d:
        for _ in range(a.rounds):
            for on in ((False,) if a.off_only else (False, True)):
                runs.append(run(Path(d), a.symbols, len(runs), on, a.clients, a.port))
    out: dict[str, Any] = {"bench": "dashboard", "symbols": a.symbols, "clients": a.clients, "rounds": a.rounds,
                           "cpus": os.cpu_count()}
    for key in ("ticks_per_s", "driver_cpu_us_per_tick", "daemon_cpu_us_per_tick", "p50_tick_to_signal_ms",
                "p99_tick_to_signal_ms"):
        for on in (False, True):
            vals = [x[key] for x in runs if x["dashboard"] is on and x[key] is not None]
            if vals:
                out[f"{key}_{'on' if on else 'off'}"] = round(statistics.median(vals), 3)
        if f"{key}_on" in out and out.get(f"{key}_off"):
            out[f"{key}_on_over_off"] = round(out[f"{key}_on"] / out[f"{key}_off"], 3)
    offs = [x["ticks_per_s"] for x in runs if not x["dashboard"]]
    if len(offs) >= 2:  # the same setting run after run: what a difference must exceed to be the dashboard's
        noise = [round(b / a, 3) for a, b in zip(offs, offs[1:], strict=False)]
        out["ticks_per_s_off_over_off"] = noise
    pairs = [(a["ticks_per_s"], b["ticks_per_s"]) for a, b in zip(runs[::2], runs[1::2], strict=False)
             if not a["dashboard"] and b["dashboard"]]
    if pairs:
        out["ticks_per_s_on_over_off_by_pair"] = [round(on / off, 3) for off, on in pairs]
    for key in ("cpu_us_per_tick", "driver_threads_cpu_us_per_tick"):
        for on in (False, True):
            rs = [x[key] for x in runs if x["dashboard"] is on]
            if rs:
                out[f"{key}_{'on' if on else 'off'}"] = {
                    k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
    out["runs"] = runs
    print(json.dumps(out))


if __name__ == "__main__":
    main()
