"""The backtest runner: history candles through the live worker and TradeManager code, one day at a time.

Why this shape: a backtest must trade exactly as the daemon would, so it runs the same pieces, in-process:
- each day's candles (history.store: cached, quality-checked, one symbol-day in memory at a time) become ticks
  (backtest.ticks) fed to market_data_handler.MarketDataHandler, which builds the strategies' candles and runs
  the strategies, caps and signal management as a worker does;
- each signal goes to trade_manager.TradeManager (replay mode, the clock from the data): risk checks, sizing,
  caps and halts, the entry cut-off and square-off, the ledger and the dated cost table, as live;
- its orders go to backtest.sim_broker.BacktestBroker (the fill model) through the broker port, and the
  TradeManager's feedback (outcomes, forced exits, cap triggers) goes back to the handler, as the driver's
  loop carries it between processes live.
Each run writes its own SQLite database (reports/backtest/<run-id>/run.sqlite): live data is never touched.
As live, every day starts from the configured capital (risk.capital), with strategies warmed from the days
before it as a live start on that day warms them (backtest.warm); the equity series is that capital plus the
closed trades' cumulative net P&L (backtest.metrics).
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import event

from backtest.day_db import DayUnitDB, day_unit
from backtest.day_loop import run_candle_day
from backtest.recorded import RecordedSource, recorded_ticks
from backtest.sim_broker import BacktestBroker, FillModel
from backtest.ticks import day_ticks
from backtest.warm import DayWarmup
from core.clock import ReplayClock, ist_epoch
from core.config import Config, Secrets
from core.enums import ExecutionMode
from core.types import Signal, Tick
from db import DBHandler, TradeLog, initialize_database, release_engine, stop_checkpointer
from history.frames import CandleColumns
from history.intervals import Interval
from history.sources import HistorySource
from history.store import HistoryDay, HistoryStore
from market_data_handler import MarketDataHandler
from pipeline import warmup
from pipeline.messages import CapTriggers, DayHalted, ForceExit, Marks, Outcome
from trade_manager import TradeManager

log = logging.getLogger(__name__)

# a day's ticks as (time, symbol, price, vol_traded_today), given the day's candles and each symbol's open trade
TickBuilder = Callable[[Sequence[HistoryDay], Callable[[str], Any]], Iterator[tuple[int, str, float, int]]]

# a backtest talks to no server: nothing secret is read or needed
NO_SECRETS = Secrets(app_key=None, host_server="", live_data=False, database_url=None, fyers_app_id=None,
                     fyers_access_token=None)


@dataclass(frozen=True)
class BacktestSpec:
    """One run: what to trade, over which days, from which data, and where its outputs go."""

    cfg: Config
    source: HistorySource
    interval: Interval
    first: date
    last: date
    symbols: tuple[str, ...]
    cache_dir: Path
    out_root: Path
    run_id: str
    slippage_pct: float | None = None     # None: costs.slippage_pct of the config
    config_text: str = ""                 # the config file as read, for the run's config hash
    progress: TextIO | None = None        # where the progress bar goes (None: no progress)
    skip_bad_days: bool = True            # a symbol-day with quality findings is not traded (and is reported)
    workers: int = 1                      # processes over blocks of days (days are independent, as live)
    trade_from: date | None = None        # days before it are read (the quality checks' previous close), not run
    keep_signals: bool = False            # keep every emitted signal in the result (lookahead, tests): memory grows


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade_log row of the run, as plain values (it crosses from a worker process)."""

    trade_id: int
    trade_date: date
    symbol: str
    strategy: str
    side: str
    trade_type: str
    quantity: int
    entry_time: int
    entry_price: Decimal
    exit_time: int
    exit_price: Decimal
    gross_pnl: Decimal
    costs: Decimal
    net_pnl: Decimal
    capital_employed: Decimal
    capital_at_exit: Decimal
    percent_change: float
    exit_reason: str
    exit_order_id: int | None
    instrument: str
    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi: Decimal
    stamp_duty: Decimal
    gst: Decimal

    @classmethod
    def of(cls, row: TradeLog, id_offset: int = 0) -> TradeRecord:
        values = {f: getattr(row, f) for f in cls.__dataclass_fields__}
        values["trade_id"] = row.trade_id + id_offset
        return cls(**values)


@dataclass
class BacktestResult:
    run_id: str
    out_dir: Path
    db_path: Path
    days: list[date]
    trades: list[TradeRecord]
    candles: int
    elapsed_s: float
    config_hash: str
    ticks_run: int = 0  # ticks through the worker's whole path; of the other 4 x candles, those not parked folded
    skipped: list[str] = field(default_factory=list)  # symbol-days not traded, with why
    flagged: list[str] = field(default_factory=list)  # symbol-days traded despite findings (skip_bad_days off)
    signals: list[Signal] = field(default_factory=list)  # the signals emitted, in order (spec.keep_signals)
    cold_starts: int = 0  # strategy-days that started cold: warm-up from history on, too few earlier candles
    candles_parked: int = 0  # candles not run: their symbol's strategy had stopped for a halted day (DayHalted)


def config_hash(text: str, slippage_pct: float) -> str:
    """Identifies the trading rules of a run: the config file's bytes and the fill model's slippage."""
    return hashlib.sha256(f"{text}\n--slippage {slippage_pct!r}".encode()).hexdigest()[:16]


def with_symbols(cfg: Config, symbols: Sequence[str]) -> Config:
    """The config trading exactly `symbols` (each one the config lists; the caller has checked). The mode is
    paper: orders go to the backtest broker, never to a real one."""
    known = {s.symbol: s for s in cfg.symbols}
    return replace(cfg, symbols=tuple(known[s] for s in symbols), mode=ExecutionMode.PAPER)


def _aligned_days(store: HistoryStore, spec: BacktestSpec, exchange: str,
                  lead: Callable[[HistoryDay], None] | None = None) -> Iterator[tuple[date, list[HistoryDay]]]:
    """Each date that has candles for any symbol, with those symbols' days: one day of each in memory. The
    lead-in's days (before spec.trade_from: read for the quality checks' previous close) are not yielded; `lead`
    is given each of their symbol-days, in date order."""
    gens = {s: store.days(s, exchange, spec.interval, spec.first, spec.last) for s in spec.symbols}
    heads: dict[str, HistoryDay | None] = {s: next(g, None) for s, g in gens.items()}
    while True:
        live = [h for h in heads.values() if h is not None]
        if not live:
            return
        d = min(h.day for h in live)
        today = [h for h in live if h.day == d]
        for h in today:
            heads[h.symbol] = next(gens[h.symbol], None)
        if spec.trade_from is None or d >= spec.trade_from:
            yield d, today
        elif lead is not None:
            for h in today:
                lead(h)


def count_days(spec: BacktestSpec) -> int:
    return max(1, (spec.last - spec.first).days + 1)


class DayRun:
    """One trading day: a TradeManager and a MarketDataHandler on the run's database, fed the day's ticks."""

    def __init__(self, cfg: Config, db: DBHandler, broker: BacktestBroker, day: date, signals: list[Signal] | None):
        self.cfg = cfg
        self.broker = broker
        self.clock = ReplayClock(ist_epoch(day, cfg.session.pre_open))
        self.tm = TradeManager(cfg, NO_SECRETS, db, None, self.clock, replay=True, day=day, broker=broker)
        self.inbox: list[tuple[Signal | Marks, int]] = []
        self.candles_parked = 0  # candles of symbols whose strategy stopped for the halted day (day_loop skips them)
        self.controls: list[Any] = []
        self.all_signals = signals
        self.mdh = MarketDataHandler(cfg, [s.symbol for s in cfg.symbols], emit=self._emit,
                                     emit_marks=lambda m, pos: self.inbox.append((m, pos)))
        self.tm.set_notify(lambda sym, msg: self.controls.append(msg))
        self.tm.start()

    def _emit(self, sig: Signal, latency_ms: float, held: bool, pos: int) -> None:
        self.inbox.append((sig, pos))
        if self.all_signals is not None:
            self.all_signals.append(sig)

    def drain(self) -> None:
        """Carry signals, marks, broker answers and feedback until nothing is left moving (the symbol's held
        ticks are released by its outcome, and may signal again)."""
        tm, mdh = self.tm, self.mdh
        while self.inbox or self.controls or self.broker.pending():
            inbox, self.inbox = self.inbox, []
            for item, _pos in inbox:
                if isinstance(item, Marks):
                    tm.on_marks(item)
                else:
                    tm.process_signal(item)
            tm.poll()
            controls, self.controls = self.controls, []
            for msg in controls:
                if isinstance(msg, (Outcome, ForceExit, CapTriggers, DayHalted)):
                    mdh.apply_control(msg)

    def close(self) -> None:
        end = ist_epoch(self.tm.day, self.cfg.session.close)
        self.clock.advance(end)
        self.tm.on_clock(end)
        self.drain()
        self.tm.close_session(end)
        self.drain()
        self.tm.stop()


@dataclass
class DaysRun:
    """What run_days did: the days traded, candles run, symbol-days skipped or traded despite findings, and the
    signals emitted (when the spec keeps them)."""

    days: list[date] = field(default_factory=list)
    candles: int = 0
    ticks_run: int = 0     # ticks run through the worker's whole path (the rest were folded into quiet candles)
    skipped: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    cold_starts: int = 0   # strategy-days whose warm-up found too few earlier candles (backtest.warm)
    candles_parked: int = 0  # candles of symbols parked for a halted day, not run (MarketDataHandler.park)

    def add(self, other: DaysRun) -> None:
        self.days += other.days
        self.candles += other.candles
        self.ticks_run += other.ticks_run
        self.skipped += other.skipped
        self.flagged += other.flagged
        self.signals += other.signals
        self.cold_starts += other.cold_starts
        self.candles_parked += other.candles_parked


def run_days(spec: BacktestSpec, db: DBHandler, on_day: Any = None, cut_at: int | None = None,
             ticks: TickBuilder = day_ticks) -> DaysRun:
    """Trade every day of the spec into `db`. `cut_at`: only candles starting at or before this time exist
    (backtest.lookahead)."""
    if isinstance(spec.source, RecordedSource):
        if cut_at is not None:
            raise ValueError("recorded tick days cannot be cut at a time: the lookahead check is for candles")
        return run_recorded(spec, db, spec.source, on_day)
    cfg = with_symbols(spec.cfg, spec.symbols)
    slippage = cfg.costs.slippage_pct if spec.slippage_pct is None else spec.slippage_pct
    broker = BacktestBroker(FillModel(slippage))
    store = HistoryStore(spec.source, spec.cache_dir, cfg.session)
    fyers = {s.symbol: s.fyers for s in cfg.symbols}
    warm = _day_warmup(spec, cfg, store)
    days: list[date] = []
    skipped: list[str] = []
    flagged: list[str] = []
    signals: list[Signal] = []
    candles = ticks_run = cold_starts = parked = 0
    # the warm-up keeps the lead-in's days from the run's own reads (prime read only the days before them)
    for d, hdays in _aligned_days(store, spec, cfg.exchange, None if warm is None else warm.add):
        if warm is not None:
            for h in hdays:
                warm.add(h)
        good = []
        for h in hdays:
            if not h.report.ok and spec.skip_bad_days:
                skipped.append(str(h.report))
                log.warning("not traded: %s", h.report)
                continue
            if not h.report.ok:
                flagged.append(str(h.report))
                log.warning("traded despite findings: %s", h.report)
            if len(h.columns):
                good.append(h)
        if on_day is not None:
            on_day(d)
        if cut_at is not None:
            good = [cut(h, cut_at) for h in good]
            good = [h for h in good if len(h.columns)]
        if not good:
            continue
        with day_unit(db):
            run = DayRun(cfg, db, broker, d, signals if spec.keep_signals else None)
            if warm is not None:
                cold_starts += warm.feed(run.mdh, d)
            ticks_run += _run_day(run, good, fyers, ticks)
            parked += run.candles_parked
        candles += sum(len(h.columns) for h in good)
        days.append(d)
    return DaysRun(days, candles, ticks_run, skipped, flagged, signals, cold_starts, parked)


def _day_warmup(spec: BacktestSpec, cfg: Config, store: HistoryStore) -> DayWarmup | None:
    """The run's warm-up from history (backtest.warm), its first day's earlier days before the run's own reads
    (spec.first) already read; None when off."""
    warm = DayWarmup.of(cfg, store, spec.interval)
    if warm is not None:
        warm.prime(spec.trade_from or spec.first, read_from=spec.first)
    return warm


def _run_day(run: DayRun, good: list[HistoryDay], fyers: Mapping[str, str], ticks: TickBuilder) -> int:
    """Feed the day's ticks to the day's handler and TradeManager, then close the day; returns how many ticks
    ran the whole path. The shipped tick builder's days go through backtest.day_loop, which folds quiet
    stretches of candles whole; any other builder (lookahead's cuts, tests) runs tick by tick here."""
    if ticks is day_ticks:
        return run_candle_day(run, good, fyers)
    broker = run.broker
    broker.new_day()
    mdh, clock, mark, fold = run.mdh, run.clock, broker.mark, run.mdh.fold_quiet
    ran = 0
    for t, sym, price, cum in ticks(good, run.tm.rm.trade_for):
        if t > clock.now():
            clock.advance(t)
            run.tm.on_clock(t)
            run.drain()
        mark(sym, price, t)
        # a flat candle strategy with nothing wanted: the tick only grows its candle (exact, and the
        # strategy is not called); every other tick runs the worker's whole path
        if fold(sym, t, price, cum):
            continue
        ran += 1
        mdh.process(Tick(ltp=price, vol_traded_today=cum, last_traded_time=t, exch_feed_time=t,
                         symbol=fyers[sym]))
        if run.inbox or run.controls:
            run.drain()
    run.close()
    return ran


def trade_day(run: DayRun, ticks: Iterable[tuple[int, str, float, Tick]]) -> int:
    """Run one day's ticks, in time order, through the day's handler, TradeManager and fill model, then close
    its session; the number of ticks run. The clock moves with the data, as the replay's feed moves it."""
    broker = run.broker
    broker.new_day()
    n = 0
    for t, sym, price, tick in ticks:
        if t > run.clock.now():
            run.clock.advance(t)
            run.tm.on_clock(t)
            run.drain()
        broker.mark(sym, price, t, tick.bid_price, tick.ask_price)
        run.mdh.process(tick)
        n += 1
        if run.inbox or run.controls:
            run.drain()
    run.close()
    return n


def run_recorded(spec: BacktestSpec, db: DBHandler, source: RecordedSource, on_day: Any = None) -> DaysRun:
    """Trade the spec's recorded days at tick resolution (backtest.recorded): each file's ticks as the replay's
    feed passes them, through the same day loop as candle days. `candles` counts the ticks run."""
    cfg = with_symbols(spec.cfg, spec.symbols)
    slippage = cfg.costs.slippage_pct if spec.slippage_pct is None else spec.slippage_pct
    broker = BacktestBroker(FillModel(slippage))
    names = {s.fyers: s.symbol for s in cfg.symbols}
    out = DaysRun()
    for rec in source.between(spec.trade_from or spec.first, spec.last):
        if on_day is not None:
            on_day(rec.day)
        run = DayRun(cfg, db, broker, rec.day, out.signals if spec.keep_signals else None)
        warm_recorded(cfg, run, rec.path, rec.day)
        with day_unit(db):
            n = trade_day(run, recorded_ticks(rec, cfg, names))
        out.candles += n
        out.ticks_run += n
        out.days.append(rec.day)
    return out


def warm_recorded(cfg: Config, run: DayRun, path: Path, day: date) -> None:
    """Feed the day's strategies the warm-up candles its recording run fed them (PATH.warmup.json beside the
    file, as `--replay` does), so a recorded day backtested trades as its replay; none kept: they start cold."""
    if not cfg.market_data.warmup_from_history:
        return
    wanted = warmup.needs(cfg)
    if not wanted:
        return
    try:
        got, now = warmup.load_saved(path, day, wanted)
    except FileNotFoundError:
        log.info("%s: no warm-up candles kept beside it; its strategies start cold", path.name)
        return
    except ValueError as e:
        log.warning("%s; its strategies start cold", e)
        return
    run.mdh.warm_up(got, now)


def cut(h: HistoryDay, at: int) -> HistoryDay:
    """The symbol-day with only its candles starting at or before `at`."""
    c = h.columns
    keep = c.start <= at
    return replace(h, columns=CandleColumns(c.start[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep],
                                            c.volume[keep]))


def trades_of(db: DBHandler, id_offset: int = 0) -> list[TradeRecord]:
    from sqlalchemy import select

    return db.transaction("read the run's trades", lambda s: [TradeRecord.of(r, id_offset) for r in
                                                              s.scalars(select(TradeLog).order_by(TradeLog.id))])


def open_run_db(path: Path) -> DBHandler:
    """A new, empty run database at `path`; close it with close_run_db (db.setup keeps one engine per process
    and URL until then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = initialize_database(url)
    stop_checkpointer(url)  # the commits checkpoint (wal_autocheckpoint, _scratch_pragmas); lookahead removes folders
    # a run's database is rebuilt by running again: scratch settings (the daemon's own keep db.setup's)
    event.listen(engine, "connect", _scratch_pragmas)
    engine.dispose()  # connections made from now on carry it
    return DayUnitDB(engine)  # a transaction per day, the live code's units savepoints in it


def close_run_db(path: Path) -> None:
    """Close the run database opened at `path` (its file stays): this process keeps no engine for it."""
    release_engine(f"sqlite:///{path}")


def _scratch_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """A run database's settings, safe only because the file is a scratch copy that running again rebuilds:
    - synchronous=OFF: no fsync per commit (a power cut may corrupt the file; the run is simply rerun). The
      daemon's database keeps synchronous=NORMAL in WAL, which is what makes its commits durable.
    - temp_store=MEMORY: each unit of the day is a SAVEPOINT, whose undo pages (the sub-journal) SQLite keeps in
      a temporary file; in memory they cost half the unit's SQLite time (~70 -> ~35 us for an entry's unit)
      and only live as long as the day's transaction. The daemon commits each unit, with no such sub-journal.
    The journal stays WAL: journal_mode=MEMORY or OFF measured no better here (the day is one transaction, so
    the journal is written once a day), and OFF would break the savepoints' rollback."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default: no checkpointer thread for a run database
    cur.close()


def run_backtest(spec: BacktestSpec) -> BacktestResult:
    """Run the spec and keep its database; outputs (summary.json, trades.csv, report.html) are written by
    backtest.outputs.write_outputs."""
    from ops.progress import CountProgress

    t0 = time.perf_counter()
    out_dir = spec.out_root / spec.run_id
    db_path = out_dir / "run.sqlite"
    progress = None if spec.progress is None else CountProgress(count_days(spec), f"backtest {spec.run_id}",
                                                                stream=spec.progress)
    seen: list[date] = []

    def on_day(d: date) -> None:
        if progress is not None:
            progress.advance((d - (seen[-1] if seen else spec.first)).days + (0 if seen else 1), note=str(d))
        seen.append(d)
    try:
        if spec.workers > 1:
            run, trades = _run_pool(spec, out_dir, progress)
        else:
            db = open_run_db(db_path)
            try:
                run = run_days(spec, db, on_day)
                trades = trades_of(db)
            finally:
                close_run_db(db_path)
    finally:
        if progress is not None:
            progress.done = progress.total
            progress.close()
    slippage = spec.cfg.costs.slippage_pct if spec.slippage_pct is None else spec.slippage_pct
    return BacktestResult(spec.run_id, out_dir, db_path, run.days, trades, run.candles, time.perf_counter() - t0,
                          config_hash(spec.config_text, slippage), ticks_run=run.ticks_run, skipped=run.skipped,
                          flagged=run.flagged,
                          signals=run.signals, cold_starts=run.cold_starts, candles_parked=run.candles_parked)


def day_blocks(first: date, last: date, blocks: int) -> list[tuple[date, date]]:
    """The range cut into at most `blocks` contiguous runs of days, in order."""
    n = (last - first).days + 1
    blocks = max(1, min(blocks, n))
    out = []
    for k in range(blocks):
        a, b = first + timedelta(days=k * n // blocks), first + timedelta(days=(k + 1) * n // blocks - 1)
        out.append((a, b))
    return out


def lead_in(spec: BacktestSpec, d: date) -> date:
    """Where a run of the spec's days from `d` starts reading, so that d's quality checks see the previous
    trading day's close as the whole run does (a week back covers weekends and holidays)."""
    return max(spec.first, d - timedelta(days=7))


def _run_block(args: tuple[BacktestSpec, Path]) -> tuple[DaysRun, list[TradeRecord]]:
    spec, path = args
    db = open_run_db(path)
    try:
        return run_days(spec, db), trades_of(db)
    finally:
        close_run_db(path)


def _run_pool(spec: BacktestSpec, out_dir: Path, progress: Any) -> tuple[DaysRun, list[TradeRecord]]:
    """Blocks of days in worker processes, each on its own database, merged in date order. Every day starts
    from the configured capital and fresh strategies warmed from the days before it (a block reads those of its
    first day), as live, so the merged run is the sequential run: trade ids are renumbered to continue from the
    blocks before (the ledger numbers them in order)."""
    import multiprocessing as mp

    # blocks of about 40 days or more, at most 4 per worker (taken as workers come free): each pays for a database
    # and reads its lead-in's week again (about a sixth more reading at 40 days, a third at 20)
    n = (spec.last - spec.first).days + 1
    blocks = day_blocks(spec.first, spec.last, max(spec.workers, min(spec.workers * 4, n // 40)))
    jobs = [(replace(spec, first=lead_in(spec, a), last=b, trade_from=a, progress=None, workers=1),
             out_dir / f"part-{k:03d}.sqlite") for k, (a, b) in enumerate(blocks)]
    run = DaysRun()
    trades: list[TradeRecord] = []
    with mp.get_context("fork").Pool(spec.workers) as pool:
        for (a, b), (part, tr) in zip(blocks, pool.imap(_run_block, jobs), strict=True):
            offset = max((t.trade_id for t in trades), default=0)
            trades.extend(replace(t, trade_id=t.trade_id + offset) for t in tr)
            run.add(part)
            if progress is not None:
                progress.advance((b - a).days + 1, note=str(b))
    return run, trades


def equity_of(start: Decimal, trades: Sequence[TradeLog], days: Sequence[date]) -> list[tuple[date, Decimal]]:
    from backtest.metrics import daily_equity

    return daily_equity(start, trades, days)


def signal_key(sig: Signal) -> tuple[Any, ...]:
    """What makes two signals the same decision (ids and wall times aside)."""
    return (sig.symbol, sig.strategy, int(sig.time), sig.type.value, sig.current_position.value,
            round(float(sig.price), 4), sig.stop_loss, sig.take_profit_price)


