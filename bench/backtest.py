"""The backtest runner's speed, printed as one JSON line.

    .venv/bin/python bench/backtest.py [--symbols 4] [--days 10] [--workers 1] [--gen-workers 1] [--cache DIR]
                                       [--out DIR] [--config FILE]

Generated 1-minute candles (the synthetic history source) for N symbols over D calendar days (and the fortnight
before, which the first day's warm-up from history reads), half of them on orb and half on mac (config.yaml's
strategies), run through the whole live path: the worker's handler and the strategies, the TradeManager with its
risk checks, caps and halts, the ledger on the run's SQLite database, the cost table and the fill model.
Issue 15's shape is `--symbols 200 --days 365` (about 18.75 million candles).

The candles are generated into a Parquet cache that is kept between runs (--cache DIR; by default a folder under
the system's temporary directory named by the data's identity: the seed, the session's hours and a digest of the
generator's code, so another generator never answers from a stale cache). Its files are per symbol-day, so every
shape of the same data shares it: a run generates only the symbol-days it lacks, and that is timed apart.
- gen_symbol_days, gen_s, gen_cpu_s: the calendar symbol-days generated and cached by this run (a closed day is
  cached empty; 0 when all were cached), and their wall and CPU time (--gen-workers N: N processes over the
  symbols); --generate-only stops there (fill the cache first, then time runs on it);
- candles: candles run; candles_per_s: over the run's wall time (reading the cache included; with --workers N,
  N processes over blocks of days, each on its own database, merged);
- candles_per_cpu_s: over the CPU time of the process and its workers (steadier on a shared machine);
- trades: closed trades; peak_rss_mb: the process's peak resident memory (generation in this process included);
- rss_by_quarter_mb: with one worker, the run's peak resident memory in each calendar quarter of its days (from
  the kernel's high-water mark, reset at each quarter's first day seen): flat figures say memory does not grow
  with the length of the run;
- ticks_run / ticks_folded: of the four ticks per candle, those run through the worker's whole path and those
  folded into a quiet strategy's candle without calling it, one by one or in quiet stretches of candles folded
  whole (backtest.runner, backtest.day_loop);
- candles_parked: candles not run at all because their symbol's strategy had stopped for a halted day (a risk
  cap halts trading for the day; a flat symbol's strategy is then parked: MarketDataHandler.park). They are
  counted in `candles`: read, checked and skipped, as a user's backtest of that config spends them.
--config FILE runs another config's rules (risk caps, costs, strategies' parameters) over the same symbols and
candles, e.g. one whose global caps never halt, to see the rate of days that trade to the close.
--out DIR keeps the run's summary.json, trades.csv and report.html in DIR/bench (after the timing), so two
versions of the code can be compared file by file (summary.json's run.elapsed_s aside).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import re
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest.runner import BacktestSpec, run_backtest  # noqa: E402
from core.config import SessionConfig, SymbolSpec, load_config  # noqa: E402
from history.intervals import parse_interval  # noqa: E402
from history.store import HistoryStore  # noqa: E402
from history.synthetic import SyntheticSource  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIRST = date(2025, 3, 3)
WARM_DAYS = 14
GENERATOR_FILES = ("feeds/synthetic.py", "history/synthetic.py", "history/frames.py", "history/cache.py")


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers): what a run costs on a shared
    machine, where wall time also counts the other processes' turns."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def default_cache(source: SyntheticSource) -> Path:
    """The cache's folder for this data: the source's key (seed, session hours) and the generator's code."""
    h = hashlib.sha256()
    for f in GENERATOR_FILES:
        h.update((ROOT / f).read_bytes())
    return Path(tempfile.gettempdir()) / f"backtest-bench-{source.key}-{h.hexdigest()[:12]}"


def _prefetch(job: tuple[list[str], int, SessionConfig, str, Path, date, date]) -> int:
    """Generate and cache the missing days of these symbols; the symbol-days generated."""
    names, seed, session, exchange, cache, first, last = job
    source = SyntheticSource(seed, session)
    store = HistoryStore(source, cache, session)
    m1 = parse_interval("1m")
    for n in names:
        store.prefetch(n, exchange, m1, first, last)
    return source.requests


def generate(names: list[str], seed: int, session: SessionConfig, exchange: str, cache: Path, first: date,
             last: date, workers: int) -> int:
    """Fill the cache for every symbol over first..last, in `workers` processes (symbols dealt round-robin)."""
    if workers <= 1:
        return _prefetch((names, seed, session, exchange, cache, first, last))
    import multiprocessing as mp

    jobs = [(names[i::workers], seed, session, exchange, cache, first, last) for i in range(workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        return sum(pool.map(_prefetch, jobs))


class QuarterRss(io.TextIOBase):
    """A progress stream that keeps the peak resident memory of each calendar quarter of the run's days: the
    backtest's progress line names the day it reached; at the first day of a new quarter the kernel's high-water
    mark (VmHWM) is read for the quarter before and reset (/proc/self/clear_refs), so each figure is that
    quarter's own peak. Without the reset (not Linux, or refused) the figures are running peaks."""

    _DAY = re.compile(r"(\d{4})-(\d{2})-\d{2}\s*$")

    def __init__(self) -> None:
        super().__init__()
        self.quarter: str | None = None
        self.peaks: dict[str, float] = {}

    def write(self, text: str) -> int:
        m = self._DAY.search(text)
        if m is not None:
            q = f"{m.group(1)}Q{(int(m.group(2)) - 1) // 3 + 1}"
            if q != self.quarter:
                self.close_quarter()
                self.quarter = q
        return len(text)

    def close_quarter(self) -> None:
        """Record the quarter under way and reset the high-water mark for the next."""
        if self.quarter is not None:
            self.peaks[self.quarter] = max(self.peaks.get(self.quarter, 0.0), _vm_hwm_mb())
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    def isatty(self) -> bool:
        return False


def _vm_hwm_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1, help="processes over blocks of days")
    ap.add_argument("--gen-workers", type=int, default=1, help="processes generating the missing candles")
    ap.add_argument("--cache", type=Path, default=None, help="the candle cache, kept between runs")
    ap.add_argument("--out", type=Path, default=None, help="keep the run's outputs in OUT/bench")
    ap.add_argument("--generate-only", action="store_true", help="fill the cache, time that, run nothing")
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml",
                    help="the trading rules (default: config.yaml; its symbols are replaced by the bench's)")
    args = ap.parse_args()
    for flag, v in (("--symbols", args.symbols), ("--days", args.days), ("--workers", args.workers),
                    ("--gen-workers", args.gen_workers)):
        if v < 1:
            ap.error(f"{flag} {v} is not allowed: a whole number from 1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.ERROR)
    cfg = load_config(args.config)
    names = [f"SYM{i:03d}" for i in range(args.symbols)]
    cfg = replace(cfg, symbols=tuple(SymbolSpec(n, f"NSE:{n}-EQ", "orb" if i % 2 == 0 else "mac")
                                     for i, n in enumerate(names)))
    last = FIRST + timedelta(days=args.days - 1)
    m1 = parse_interval("1m")
    source = SyntheticSource(cfg.replay.seed, cfg.session)
    cache = args.cache if args.cache is not None else default_cache(source)
    g0, gc0 = time.perf_counter(), _cpu()
    # with the fortnight before: the first day's warm-up from history reads it
    generated = generate(names, cfg.replay.seed, cfg.session, cfg.exchange, cache, FIRST - timedelta(days=WARM_DAYS),
                         last, args.gen_workers)
    gen_s, gen_cpu = time.perf_counter() - g0, _cpu() - gc0
    gen = {"gen_symbol_days": generated, "gen_s": round(gen_s, 2), "gen_cpu_s": round(gen_cpu, 2),
           "cache": str(cache)}
    if args.generate_only:
        print(json.dumps({"symbols": args.symbols, "calendar_days": args.days + WARM_DAYS, **gen}))
        return
    rss = QuarterRss()
    with tempfile.TemporaryDirectory() as tmp:
        spec = BacktestSpec(cfg=cfg, source=source, interval=m1, first=FIRST, last=last, symbols=tuple(names),
                            cache_dir=cache, out_root=Path(tmp) / "out", run_id="bench", workers=args.workers,
                            progress=cast(TextIO, rss) if args.workers == 1 else None)
        rss.close_quarter()       # the run's own peaks, not the generation's
        t0, c0 = time.perf_counter(), _cpu()
        res = run_backtest(spec)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
        rss.close_quarter()
        if args.out is not None:
            from backtest.outputs import write_outputs

            write_outputs(spec, replace(res, out_dir=args.out / "bench"), record_run=False)
    print(json.dumps({"candles": res.candles, "candles_per_s": round(res.candles / elapsed),
                      "symbols": args.symbols, "days": len(res.days), "trades": len(res.trades),
                      "workers": args.workers, "elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 2),
                      "candles_per_cpu_s": round(res.candles / cpu), "ticks_run": res.ticks_run,
                      "ticks_folded": 4 * (res.candles - res.candles_parked) - res.ticks_run,
                      "candles_parked": res.candles_parked,
                      **gen,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "rss_by_quarter_mb": rss.peaks}))


if __name__ == "__main__":
    main()
