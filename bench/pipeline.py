"""Tick-pipeline throughput, latency and memory; prints ONE JSON line.

    .venv/bin/python bench/pipeline.py [--symbols 200] [--latency-seconds 60]
                                       [--paced-only | --persisted-only | --full-only]

Replays a synthetic day for N symbols through the real Driver: eight worker processes, both strategies,
the TradeManager in signals_only mode (no broker, so the figure is the pipeline's own):
  1. as fast as possible with tick persistence off          -> ticks_per_s
  2. as fast as possible with every tick written to SQLite  -> ticks_per_s_persisted (rows_persisted: the rows
     the feed process's writer reported, checked against the table)
  source_ticks_per_s: the feed alone (generate, validate, route, encode, in columns as the feed process does at
     full speed; no workers), measured between runs
     1 and 2, so the end-to-end figures read as a share of what the source can give
  3. paced at --rate ticks/s from the open, through the strategies' warm-up (no strategy can signal before its
     opening range or its slow average is in: --warmup-minutes of feed time, from config.yaml by default) and
     then --latency-seconds more -> p50/p99_tick_to_signal_ms over every signal, from a tick's arrival in the
     feed process to its signal leaving the worker; signals from ticks held for the previous signal's outcome
     are also shown apart (held_signals, p50/p99_held_tick_to_signal_ms) beside the straight ones
Memory: the summed RSS of the driver, its Manager, its feed process, its tick writer process and its workers is
sampled every 0.5 s; peak_rss_mb is the largest sum, and rss_mb_by_quarter shows whether it grows over the run.
cpu_us_per_tick splits the CPU time by process (driver, feed, workers, and tick_writer when persisted): unlike
ticks/s it barely moves with the machine's load.
The driver's figure is the CPU this process used during that run alone (the driver runs in it, and so do the
source measurement and the earlier runs), less the sampler's own thread.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from core.config import Secrets, load_config  # noqa: E402
from driver import Driver, RunOptions  # noqa: E402

DAY = "2026-11-20"


def tree(root: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes together."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError):
            pass
    return total / 2**20


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class RssSampler:
    """Summed RSS of this process tree every 0.5 s, and the latest CPU time seen of each process. This
    process's own entry is its CPU time during the sampled run only, less the sampler thread's."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.cpu: dict[int, float] = {}
        self.own_cpu_s = 0.0  # the sampler thread's CPU time: the bench's, not the driver's
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            pids = tree(os.getpid())
            self.samples.append(rss_mb(pids))
            for pid in pids:
                if pid == os.getpid():
                    continue
                c = cpu_s(pid)
                if c is not None:
                    self.cpu[pid] = c
            self.own_cpu_s = time.thread_time()

    def __enter__(self) -> RssSampler:
        self._cpu0 = _own_cpu_s()
        self._t.start()
        return self

    def __exit__(self, *a: object) -> None:
        self._stop.set()
        self._t.join()
        self.cpu[os.getpid()] = _own_cpu_s() - self._cpu0 - self.own_cpu_s


def _own_cpu_s() -> float:
    """This process's user + system CPU seconds, all threads (finer than /proc's clock ticks)."""
    t = os.times()
    return t.user + t.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp: Path, n: int, persist: str) -> Path:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["mode"] = "signals_only"
    cfg["symbols"] = [{"symbol": f"SYM{i:03d}", "strategy": "orb" if i % 2 == 0 else "mac"} for i in range(n)]
    cfg["market_data"]["persist"] = persist
    cfg["monitoring"].update(log_level="WARNING", log_dir=str(tmp / "logs"), reports_dir=str(tmp / "reports"))
    if cfg["dashboard"].get("port"):  # the daemon's own dashboard runs, on a free port: two benches at once would
        cfg["dashboard"]["port"] = free_port()  # otherwise share the configured one, and one would run without it
    p = tmp / f"config-{persist}.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def run(tmp: Path, n: int, persist: str, speed: float | None, stop_after_s: float | None = None
        ) -> tuple[dict, RssSampler, Driver]:
    cfg = load_config(make_config(tmp, n, persist))
    db_url = f"sqlite:///{tmp / f'bench-{persist}-{speed}.sqlite'}"
    secrets = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=db_url,
                      fyers_app_id=None, fyers_access_token=None)
    args = argparse.Namespace(replay="synthetic", date=DAY, speed="max" if speed is None else str(speed))
    driver = Driver(cfg, secrets, RunOptions.from_args(cfg, secrets, args), db_url=db_url)
    if stop_after_s is not None:
        threading.Thread(target=_stop_after, args=(driver, stop_after_s), daemon=True).start()
    with RssSampler() as rss:
        code = driver.run()
    if code != 0:
        raise SystemExit(f"daemon exited with {code}")
    return driver.summary, rss, driver


class GcPauses:
    """The garbage collector's pauses in this process (the driver's), by generation: (monotonic start, wall
    ms, CPU ms of the collecting thread; the CPU figure barely moves with the machine's load)."""

    def __init__(self) -> None:
        self.ms: dict[int, list[tuple[float, float, float]]] = {0: [], 1: [], 2: []}
        self._t0 = self._c0 = 0.0

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0, self._c0 = time.monotonic(), time.thread_time()
        else:
            self.ms[info["generation"]].append((self._t0, (time.monotonic() - self._t0) * 1000.0,
                                                (time.thread_time() - self._c0) * 1000.0))

    def since(self, t: float, gen: int, cpu: bool = False) -> list[float]:
        return [c if cpu else ms for t0, ms, c in self.ms[gen] if t0 >= t]

    def __enter__(self) -> GcPauses:
        import gc
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *a: object) -> None:
        import gc
        gc.callbacks.remove(self._cb)


def _stop_after(driver: Driver, seconds: float) -> None:
    """Ask the driver to stop `seconds` after its feed started (start-up, a few seconds, is not counted)."""
    while not driver.started and not driver.stop_requested.wait(0.05):
        pass
    driver.stop_requested.wait(max(0.0, seconds - (time.monotonic() - driver.t_feed)))
    driver.stop_requested.set()


def cpu_us_per_tick(rss: RssSampler, drv: Driver, ticks: int, every: bool = False) -> dict[str, float]:
    """CPU time per tick by role: where the work goes, whatever else the machine is doing. `every`: also the
    Manager's and the dashboard's processes (on 2 cores, what they take is a core the ticks wait for)."""
    def us(pids: list[int]) -> float:
        return round(sum(rss.cpu.get(p, 0.0) for p in pids) / max(ticks, 1) * 1e6, 2)
    out = {"driver": us([os.getpid()]), "feed": us([drv.pids["feed"]]), "workers": us(drv.pids["workers"])}
    if every:
        out.update(manager=us([drv.pids["manager"]]),
                   dashboard=us([drv.pids["dashboard"]]) if drv.pids.get("dashboard") else 0.0)
    if drv.pids.get("tick_writer") is not None:  # the process that writes the ticks, when they are persisted
        out["tick_writer"] = us([drv.pids["tick_writer"]])
    return out


def warmup_s(cfg: object) -> float:
    """Feed seconds from the open before every configured strategy can signal: an opening range's minutes,
    or a moving average's slow window of candles; plus a minute for the first candle to close."""
    need = 0.0
    for spec in cfg.strategies.values():  # type: ignore[attr-defined]
        p = spec.params
        if "range_minutes" in p:
            need = max(need, 60.0 * p["range_minutes"])
        if "slow" in p:
            need = max(need, float(p["slow"]) * p.get("candle_seconds", 60))
    return need + 60.0


def paced_speed(n: int, rate: float, seconds: float, warm_s: float = 0.0) -> tuple[float, float]:
    """The replay speed at which a run from the open through `warm_s` feed seconds and then `seconds` of wall
    time dispatches `rate` ticks/s on average (the session's average density would overshoot, since the open
    is the busiest part of the day), and that run's wall time."""
    from datetime import date

    from feeds.synthetic import default_tickers, generate_day

    cfg = load_config(ROOT / "config.yaml")
    horizon = 3 * 3600
    per_s = [0] * (horizon + 1)
    t0 = None
    for tick in generate_day(default_tickers(n), date.fromisoformat(DAY), cfg.replay.seed, cfg.session):
        ts = tick["exch_feed_time"]
        t0 = ts if t0 is None else t0
        if ts - t0 > horizon:
            break
        per_s[ts - t0] += 1
    cum = [0]
    for c in per_s:
        cum.append(cum[-1] + c)
    speed = rate / (cum[-1] / horizon)
    window = horizon
    for _ in range(50):  # fixed point: the feed window the run covers depends on the speed
        window = min(horizon, int(warm_s + speed * seconds))
        speed = rate * window / max(cum[window], 1)
    return speed, window / speed


def source_ticks_per_s(n: int) -> tuple[float, int]:
    """What the source alone gives: the synthetic day generated, judged by the feed's TickValidator, routed
    and encoded into per-worker batches by the feed's TickBatcher, in this process with no workers and no
    pipes (a cycle's batches are built and dropped). The end-to-end figures read as a share of this."""
    from datetime import date

    from feeds.synthetic import SyntheticDay, default_tickers
    from pipeline.batcher import TickBatcher
    from pipeline.feed_process import FULL_SPEED_MAX_AGE_S
    from pipeline.tick_validator import TickValidator

    cfg = load_config(ROOT / "config.yaml")
    tickers = default_tickers(n)
    batcher = TickBatcher({t: i % 8 for i, t in enumerate(tickers)}, 8, lambda cycle: None,
                          max_age_s=FULL_SPEED_MAX_AGE_S,
                          validator=TickValidator(set(tickers), max_ahead_s=cfg.market_data.max_ahead_s,
                                                  gap_confirm_ticks=cfg.market_data.gap_confirm_ticks,
                                                  max_price_move_pct=cfg.market_data.max_price_move_pct))
    t0 = time.perf_counter()
    for cols in SyntheticDay(tickers, date.fromisoformat(DAY), cfg.replay.seed, cfg.session).windows():
        batcher.dispatch_columns(cols)  # as the feed process takes the synthetic day at full speed
    batcher.flush(final=True)
    return batcher.dispatched / (time.perf_counter() - t0), batcher.dispatched


def persisted_run(tmp: Path, n: int, out: dict) -> None:
    """Run 2: every tick written to SQLite; fails unless the table holds every dispatched tick."""
    import sqlite3

    s2, sampler2, drv2 = run(tmp, n, "every_tick", None)
    out["ticks_per_s_persisted"] = round(s2["dispatched"] / s2["replay_s"])
    with sqlite3.connect(tmp / "bench-every_tick-None.sqlite") as con:
        in_table = con.execute("SELECT COUNT(*) FROM market_data").fetchone()[0]
    if in_table != s2["dispatched"]:
        raise SystemExit(f"persisted run: {in_table} rows in market_data for {s2['dispatched']} ticks dispatched")
    out["rows_persisted"] = s2.get("rows_persisted", in_table)
    out["cpu_us_per_tick_persisted"] = cpu_us_per_tick(sampler2, drv2, s2["dispatched"])
    out["peak_rss_mb_persisted"] = round(max(sampler2.samples), 1)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--rate", type=float, default=5000.0, help="paced load for the latency run, ticks/s")
    ap.add_argument("--latency-seconds", type=float, default=150.0,
                    help="wall seconds of the paced run after the strategies' warm-up")
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="feed minutes from the open before strategies can signal (default: from config.yaml)")
    ap.add_argument("--paced-only", action="store_true",
                    help="skip the two full-speed runs and the source measurement: the latency run alone")
    ap.add_argument("--persisted-only", action="store_true",
                    help="the full-speed run with every tick written to SQLite alone")
    ap.add_argument("--full-only", action="store_true",
                    help="the full-speed run with persistence off alone (ticks_per_s, cpu_us_per_tick): no source "
                         "measurement, no persisted or paced run")
    a = ap.parse_args()
    if a.paced_only + a.full_only + a.persisted_only > 1:
        ap.error("--paced-only, --persisted-only and --full-only exclude each other")
    out: dict = {"bench": "pipeline", "symbols": a.symbols, "workers": 8, "python": platform.python_version(),
                 "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as d:
        tmp = Path(d)
        if a.persisted_only:
            persisted_run(tmp, a.symbols, out)
            print(json.dumps(out))
            return
        if not a.paced_only:
            s, sampler, drv1 = run(tmp, a.symbols, "off", None)
            rss = sampler.samples
            out["ticks"] = s["dispatched"]
            out["ticks_per_s"] = round(s["dispatched"] / s["replay_s"])
            out["replay_s"] = round(s["replay_s"], 2)
            out["signals"] = s["signals"]
            out["cpu_us_per_tick"] = cpu_us_per_tick(sampler, drv1, s["dispatched"])
            out["peak_rss_mb"] = round(max(rss), 1)
            q = len(rss) // 4 or 1
            out["rss_mb_by_quarter"] = [round(max(rss[i * q:(i + 1) * q] or rss[-1:]), 1) for i in range(4)]
            if a.full_only:
                print(json.dumps(out))
                return
            rate, n_src = source_ticks_per_s(a.symbols)
            out["source_ticks_per_s"] = round(rate)
            out["source_ticks"] = n_src
            persisted_run(tmp, a.symbols, out)
        warm = 60.0 * a.warmup_minutes if a.warmup_minutes is not None else warmup_s(load_config(ROOT / "config.yaml"))
        speed, wall = paced_speed(a.symbols, a.rate, a.latency_seconds, warm)
        with GcPauses() as gcp:
            s3, sampler3, drv = run(tmp, a.symbols, "off", speed, stop_after_s=wall)
        # the driver's collector pauses by generation once the feed ran: each stalls every signal in flight
        out["driver_gc_pauses"] = [len(gcp.since(drv.t_feed, g)) for g in (0, 1, 2)]
        out["driver_gc_max_ms"] = [round(max(gcp.since(drv.t_feed, g), default=0.0), 2) for g in (0, 1, 2)]
        out["driver_gc_cpu_max_ms"] = [round(max(gcp.since(drv.t_feed, g, cpu=True), default=0.0), 2)
                                       for g in (0, 1, 2)]
        paced = s3["dispatched"] / max(s3.get("feed_wall_s", wall), 1e-9)
        out["paced_speed"] = round(speed, 2)
        out["paced_wall_s"] = round(wall, 1)
        out["paced_warmup_feed_min"] = round(warm / 60, 1)
        out["paced_ticks_per_s"] = round(paced)
        out["paced_cpu_us_per_tick"] = cpu_us_per_tick(sampler3, drv, s3["dispatched"], every=True)
        every = drv.latencies_ms + drv.held_latencies_ms
        out["tick_to_signal_signals"] = len(every)
        out["tick_to_signal_p50_ms"] = pct(every, 0.50)
        out["tick_to_signal_p99_ms"] = pct(every, 0.99)
        out["tick_to_signal_max_ms"] = pct(every, 1.0)
        # apart: straight signals, and signals from ticks held back until an earlier signal's outcome was known
        # (a strategy never sees a tick before it knows what became of its last order: they wait for the
        # TradeManager's decision as well as for the pipeline)
        out["latency_signals"] = len(drv.latencies_ms)
        out["p50_tick_to_signal_ms"] = pct(drv.latencies_ms, 0.50)
        out["p99_tick_to_signal_ms"] = pct(drv.latencies_ms, 0.99)
        out["max_tick_to_signal_ms"] = pct(drv.latencies_ms, 1.0)
        out["held_signals"] = len(drv.held_latencies_ms)
        out["p50_held_tick_to_signal_ms"] = pct(drv.held_latencies_ms, 0.50)
        out["p99_held_tick_to_signal_ms"] = pct(drv.held_latencies_ms, 0.99)
        # where a signal's time goes after it leaves the worker: the hop to the driver, the wait for release in
        # feed order, the wait while the signals released with it before it are decided, the TradeManager's
        # decision (a held signal's tick waits for all four of the one before)
        for stage, ms in getattr(drv, "stage_ms", {}).items():
            out[f"{stage}_p50_ms"], out[f"{stage}_p99_ms"] = pct(ms, 0.50), pct(ms, 0.99)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
