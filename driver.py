"""The daemon's entry point and supervisor (seed chart 1).

    python driver.py              run the daemon (replay with LIVE_DATA=false, Fyers with LIVE_DATA=true)
    python driver.py --check      validate config.yaml, .env and the database, then exit 0 or 2
    python driver.py status       positions, P&L, trading state: live from the running daemon, else the database
    python driver.py fyers-login  log in to Fyers and write today's FYERS_ACCESS_TOKEN into .env
    python driver.py history fetch --from D --to D [--symbols A,B] [--source S] [--interval 1m]
                                  fill the local candle cache for the backtest (history/cli.py)
    python driver.py backtest --from D --to D [--symbols A,B] [--source S] [--data DIR] [--interval 1m]
                                  backtest the configured strategies over history (backtest/cli.py)
    python driver.py backtest compare RUN_A RUN_B
    python driver.py backtest lookahead --from D --to D ...   a signal that changes with the data cut at its time
    python driver.py backtest optimize --from D --to D --param mac.fast=5:20:1 [--grid | --trials N] ...
                                  search strategy parameters over backtests (backtest/optimize_cli.py)
    python driver.py dashboard --date D
                                  the dashboard of a finished day, read-only, from its database (dashboard/)
    python driver.py strategy new NAME
                                  write user_strategies/NAME.py, a working strategy of your own to start from
"""
from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import notify
from core.clock import Clock, ReplayClock, ist_epoch, to_ist
from core.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    Secrets,
    check_secrets_for_mode,
    load_config,
    load_secrets,
    uncovered_day,
)
from core.enums import ExecutionMode
from core.errors import StartupError
from core.gc_tuning import settle_driver
from core.logs import LogSink, setup_logging
from db import DatabaseError
from notify.config import channels as notify_channels
from notify.config import env_values
from notify.events import DaemonReady, DaemonStarted, DayClosed, FeedResumed, FeedSilent
from pipeline.events import WorkerEvents
from pipeline.feed_process import FeedProcess
from pipeline.live_view import LIVE_EVERY_S, remove_key, start_manager, trading_view
from pipeline.messages import (
    END_OF_FEED,
    CheckpointTaken,
    Marks,
    MarksTaken,
    MessageError,
    SignalRaised,
    StrategyTurnedOff,
    WatermarkReached,
    WorkerEvent,
    WorkerReady,
    WorkerStopped,
)
from pipeline.sequencer import SignalSequencer
from pipeline.shared_state import FLUSH_EVERY_S, SharedState
from pipeline.supervisor import Supervisor

log = logging.getLogger("driver")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
MAX_WORKER_RESTARTS = 5  # a worker (or live feed) that keeps dying (a bug, a broken install) stops the daemon


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driver.py", description="Intraday trading daemon for NSE equities.")
    p.add_argument("command", nargs="?", default="run", choices=("run", "status", "fyers-login", "dashboard"),
                   help="run the daemon (default), print its status from the database, log in to Fyers "
                        "and write today's access token into .env, or serve a finished day's dashboard")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="config file (default: config.yaml)")
    p.add_argument("--check", action="store_true", help="validate config, .env and database, then exit")
    p.add_argument("--replay", metavar="SOURCE", help="replay source: synthetic or a recorded file")
    p.add_argument("--date", metavar="YYYY-MM-DD",
                   help="trading day to replay (a recorded file replays its own day; another is refused)")
    p.add_argument("--speed", metavar="SPEED", help="replay speed: max, 1 (real time) or a positive multiple")
    p.add_argument("--start", metavar="HH:MM", help="replay: start the day at this IST time (default: the open)")
    p.add_argument("--record", metavar="PATH", type=Path,
                   help="also write every tick received to PATH (.csv, .jsonl, optionally .gz) to replay it later")
    p.add_argument("--dashboard-port", metavar="PORT", type=int, default=None,
                   help="serve the dashboard on this loopback port (0: off; default: dashboard.port in config)")
    p.add_argument("--json", action="store_true", help="status: print one JSON object")
    p.add_argument("--env-file", metavar="PATH", type=Path, default=None,
                   help="fyers-login: the .env file to write the token into (default: the project's .env)")
    return p


def load_everything(config_path: Path, need_secrets: bool = True) -> tuple[Config, object, list[str]]:
    """Config and secrets, with every problem found (config errors, env errors, missing secrets)."""
    problems: list[str] = []
    secrets, env_problems = load_secrets()
    problems.extend(env_problems)
    cfg = None
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        problems.extend(e.problems)
    if cfg is not None and need_secrets:
        problems.extend(check_secrets_for_mode(cfg, secrets))
        problems.extend(notify_channels(cfg.notifications, env_values())[1])  # a missing ${NAME}: named, exit 2
    return cfg, secrets, problems


def _server_problems(cfg: Config, secrets: Secrets) -> list[str]:
    """Ask HOST_SERVER once whether it is the paper broker or a real OpenAlgo, and whether that suits the mode."""
    from gateway.identity import server_problems

    return server_problems(cfg.mode, secrets.host_server, secrets.app_key)


def _fyers_problems(cfg: Config, secrets: Secrets) -> list[str]:
    """With LIVE_DATA=true: does Fyers accept today's token (locally valid, then the SDK's profile call)?"""
    if not secrets.live_data or not secrets.fyers_app_id or not secrets.fyers_access_token:
        return []
    from feeds.fyers_api import token_problems

    return token_problems(secrets.fyers_app_id, secrets.fyers_access_token,
                          log_dir=cfg.resolve_path(cfg.monitoring.log_dir))


def _dashboard_problems(cfg: Config) -> list[str]:
    """With the dashboard on, DASHBOARD_TOKEN must be usable: the daemon would otherwise trade on without it, and
    `--check` is where the operator learns that before the open rather than from a log line."""
    if cfg.dashboard.port == 0:
        return []
    from dashboard.token import TOKEN_KEY, load_token

    fix = ("run ./dev.sh setup, which writes a random one into .env, or set dashboard.port: 0 in config.yaml to run "
           "without a dashboard")
    token = load_token()
    if token is None:
        return [f"{TOKEN_KEY}: missing or blank in .env while the dashboard is on (dashboard.port: "
                f"{cfg.dashboard.port}) -- {fix}"]
    if len(token) < 16:
        return [f"{TOKEN_KEY}: too short ({len(token)} characters; at least 16 are allowed) -- {fix}"]
    return []


def check(config_path: Path, args: argparse.Namespace | None = None) -> int:
    """--check: report what was checked, or every problem; exit 0 or 2. With warm-up from history on, also which
    strategies would start cold for want of history on the day a run with these `args` would trade, and when
    each becomes ready (notes: a cold start is allowed)."""
    import db

    cfg, secrets, problems = load_everything(config_path)
    checked: list[str] = []
    if cfg is not None:
        checked.append(f"config: {config_path} ({len(cfg.symbols)} symbols, {cfg.workers} workers, "
                       f"mode {cfg.mode.value})")
    if not any(p.split(":")[0] in ("APP_KEY", "HOST_SERVER", "LIVE_DATA", "FYERS_APP_ID", "FYERS_ACCESS_TOKEN")
               for p in problems):
        feed = "Fyers data socket" if secrets.live_data else "replay"
        checked.append(f".env: secrets present for the chosen mode (feed: {feed}, broker: {secrets.host_server})")
    if cfg is not None and not any(p.split(":")[0] in ("APP_KEY", "HOST_SERVER", "mode") for p in problems):
        server = _server_problems(cfg, secrets)
        problems.extend(server)
        if not server and cfg.mode is ExecutionMode.LIVE:
            checked.append(f"broker: {secrets.host_server} is an OpenAlgo server, not the paper broker")
        elif not server and cfg.mode is ExecutionMode.PAPER:
            checked.append(f"broker: {secrets.host_server} is not a real OpenAlgo server (a paper broker that "
                           "accepts APP_KEY, or nothing yet: the daemon starts one there with APP_KEY)")
    if cfg is not None and secrets.live_data and not any(p.split(":")[0].startswith("FYERS_") for p in problems):
        fyers = _fyers_problems(cfg, secrets)
        problems.extend(fyers)
        if not fyers:
            checked.append("Fyers: the API accepts FYERS_APP_ID and today's FYERS_ACCESS_TOKEN (profile call)")
    if cfg is not None:
        dash = _dashboard_problems(cfg)
        problems.extend(dash)
        if not dash and cfg.dashboard.port:
            checked.append(f"dashboard: DASHBOARD_TOKEN set for http://{cfg.dashboard.host}:{cfg.dashboard.port}/")
    try:
        where = db.check_connection(secrets.database_url)
        db.initialize_database(secrets.database_url)
        checked.append(f"database: connected to {where}, tables ready")
    except db.DatabaseError as e:
        problems.append(f"DATABASE_URL: {e}")
    notes = _warmup_forecast(cfg, secrets, args) if cfg is not None and not problems else []
    for line in checked:
        print(f"ok   {line}")
    for line in notes:
        print(f"note {line}")
    for line in problems:
        print(f"FAIL {line}")
    if problems:
        print(f"{len(problems)} problem(s) found; the daemon would not start.")
        return EXIT_CONFIG
    print("all checks passed")
    return EXIT_OK


def _warmup_forecast(cfg: Config, secrets: Secrets, args: argparse.Namespace | None) -> list[str]:
    """What warm-up from history would find for a run started now with `args` (history is read, and cached, as at
    start): a line saying how many strategies start warm, and one per strategy that would start cold."""
    if not cfg.market_data.warmup_from_history:
        return []
    from pipeline.warmup import cold, gather

    try:
        opts = RunOptions.from_args(cfg, secrets, args or build_parser().parse_args([]))
    except ValueError as e:
        return [f"warm-up: not forecast ({e})"]
    start_ts = None if opts.start is None else ist_epoch(opts.day, opts.start)
    wanted, got, now, why = gather(cfg, secrets, opts.live_data, opts.source, opts.day, start_ts)
    lines = cold(wanted, got, now, ist_epoch(opts.day, cfg.session.open), why)
    where = "Fyers (live)" if opts.live_data else f"replay of {opts.source}"
    return [f"warm-up from history for {opts.day} ({where}): {len(wanted) - len(lines)} of {len(wanted)} "
            "strategies would start warm", *lines]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:  # its own subcommands and flags (history/cli.py)
        from history.cli import main as history_main

        return history_main(argv[1:])
    if argv[:2] == ["backtest", "optimize"]:  # backtest/optimize_cli.py
        from backtest.optimize_cli import main as optimize_main

        return optimize_main(argv[2:])
    if argv[:1] == ["backtest"]:  # backtest/cli.py
        from backtest.cli import main as backtest_main

        return backtest_main(argv[1:])
    if argv[:1] == ["strategy"]:  # strategies/new_strategy.py
        from strategies.new_strategy import main as strategy_main

        return strategy_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.check:
        return check(args.config, args)
    if args.command == "fyers-login":
        from core.config import DEFAULT_ENV_PATH
        from ops.fyers_login import run as fyers_login

        return fyers_login(args.env_file or DEFAULT_ENV_PATH)
    cfg, secrets, problems = load_everything(args.config, need_secrets=args.command not in ("status", "dashboard"))
    if cfg is not None and args.dashboard_port is not None:
        if not 0 <= args.dashboard_port <= 65535:
            print(f"--dashboard-port: {args.dashboard_port!r} is not allowed -- use 0 (off) or 1-65535",
                  file=sys.stderr)
            return EXIT_CONFIG
        import dataclasses
        cfg = dataclasses.replace(cfg, dashboard=dataclasses.replace(cfg.dashboard, port=args.dashboard_port))
    if not problems and args.command == "run":  # before any process starts: a refusal now, not mid-morning
        try:  # the local input first (a replay file's pre-scan): what is refused there never needs the broker
            opts = RunOptions.from_args(cfg, secrets, args)
        except ValueError as e:
            print(f"Cannot start: {e}", file=sys.stderr)
            return EXIT_CONFIG
        problems = _server_problems(cfg, secrets) + _fyers_problems(cfg, secrets)
    if problems:
        print("Cannot start: fix these in config.yaml or .env (python driver.py --check lists them again):",
              file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "dashboard":
        return _finished_day_dashboard(cfg, secrets, args.date)
    if args.command == "status":
        from ops.status import print_status  # noqa: PLC0415

        try:
            day = date.fromisoformat(args.date) if args.date else None
        except ValueError:
            print(f"--date: {args.date!r} is not allowed -- use YYYY-MM-DD", file=sys.stderr)
            return EXIT_CONFIG
        return print_status(cfg, secrets, as_json=args.json, day=day)
    return Driver(cfg, secrets, opts).run()


# ----------------------------------------------------------------------------------------------- the Driver

@dataclass(frozen=True)
class RunOptions:
    """How this run gets its ticks: the Fyers socket, or a replay of a source at a speed for a day."""

    live_data: bool
    source: str
    day: date
    speed: float | None  # None: as fast as possible
    start: dtime | None = None  # replay only: ticks before this IST time are skipped
    record: Path | None = None  # a recording of the ticks received, in the replay format
    scan: Any = None  # a recorded replay file: what its pre-scan found (feeds.replay_check.ReplayScan)

    @classmethod
    def from_args(cls, cfg: Config, secrets: Secrets, args: argparse.Namespace) -> RunOptions:
        source = args.replay or cfg.replay.source
        raw_speed = str(args.speed or cfg.replay.speed)
        if raw_speed == "max":
            speed = None
        else:
            try:
                speed = float(raw_speed)
                if not math.isfinite(speed) or speed <= 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"--speed: {raw_speed!r} is not allowed -- use max, 1 or a positive "
                                 "multiple") from None
        raw_day = args.date or cfg.replay.date
        key = "--date" if args.date else "replay.date"
        src_key = "--replay" if args.replay else "replay.source"
        scan = None
        if source != "synthetic" and not secrets.live_data:
            from feeds.replay_check import scan_recording  # before any worker or broker starts: refused input
            if not Path(source).exists():                 # never gets as far as a report
                raise ValueError(f"{src_key}: {source!r} is not allowed -- use synthetic or an existing recorded "
                                 "file")
            scan = scan_recording(source, {s.fyers for s in cfg.symbols}, cfg.replay.max_bad_row_share, src_key)
        if raw_day:
            try:
                day = date.fromisoformat(str(raw_day))
            except ValueError:
                raise ValueError(f"{key}: {raw_day!r} is not allowed -- use YYYY-MM-DD") from None
            if scan is not None and day != scan.day:
                raise ValueError(f"{key}: {day.isoformat()!r} is not allowed -- {source} was recorded on {scan.day} "
                                 f"(IST, from its timestamps); leave {key} out or give {scan.day}")
        elif scan is not None:
            day = scan.day  # a recorded day replays as that day, never as today
        elif secrets.live_data:
            day = to_ist(time.time()).date()
        else:
            day = to_ist(time.time()).date()
            while day.weekday() >= 5:
                day -= timedelta(days=1)
        uncovered = uncovered_day(cfg.costs, day)
        if uncovered and not raw_day and scan is not None:
            raise ValueError(f"{src_key}: {source!r} is not allowed -- it was recorded on {day}, and {uncovered}")
        if uncovered:
            raise ValueError(f"{key}: {day.isoformat()!r} is not allowed -- {uncovered}")
        start = None
        raw_start = getattr(args, "start", None)
        if raw_start is not None:
            if secrets.live_data:
                raise ValueError("--start: only a replay can start mid-day (LIVE_DATA=true trades from now)")
            hh, _, mm = raw_start.partition(":")
            try:
                if not (hh.isdigit() and len(hh) <= 2 and mm.isdigit() and len(mm) == 2):
                    raise ValueError
                start = dtime(int(hh), int(mm))
            except ValueError:
                raise ValueError(f"--start: {raw_start!r} is not allowed -- use HH:MM (IST)") from None
            last = scan.routable_last_ts if scan is not None else None
            if last is not None and last < ist_epoch(day, start):
                raise ValueError(f"--start: {raw_start!r} is not allowed -- {source} has no tick of a configured "
                                 f"symbol from then on (its last is at {to_ist(last):%H:%M:%S} IST)")
        record = getattr(args, "record", None)
        if record is not None:
            from feeds.recorded import file_format
            try:
                file_format(record)
            except ValueError:
                raise ValueError(f"--record: {str(record)!r} is not allowed -- use a name ending in .csv, .csv.gz, "
                                 ".jsonl or .jsonl.gz") from None
            if not record.resolve().parent.is_dir():
                raise ValueError(f"--record: {str(record)!r} is not allowed -- its folder does not exist")
        return cls(live_data=secrets.live_data, source=source, day=day, speed=speed, start=start, record=record,
                   scan=scan)


class Driver:
    """Starts everything, moves messages between the feed, the workers and the TradeManager, watches the
    workers' health, and shuts down in order."""

    def __init__(self, cfg: Config, secrets: Secrets, opts: RunOptions, processor_factory: Any = None,
                 db_url: str | None = None):
        self.cfg = cfg
        self.secrets = secrets
        self.opts = opts
        self.db_url = db_url if db_url is not None else secrets.database_url
        self.processor_factory = processor_factory
        self.stop_requested = threading.Event()
        self.interrupts = 0
        self.summary: dict[str, Any] = {}
        self.latencies_ms: list[float] = []  # tick dispatched -> signal emitted, per signal
        self.held_latencies_ms: list[float] = []  # the same for ticks held for an earlier signal's outcome
        # a signal's stages in this process, per signal (bench/pipeline.py): the worker's write to its receipt
        # (hop), receipt to release in feed order (sequenced), release to the start of its decision while the
        # signals released before it are decided (queued), and the TradeManager's decision (decided)
        self.stage_ms: dict[str, list[float]] = {"hop": [], "sequenced": [], "queued": [], "decided": []}
        self._received: dict[int, float] = {}  # id of a signal in the sequencer -> wall time it was received
        self.pids: dict[str, Any] = {}  # the child processes of this run (benchmarks read their CPU time)
        self.shared: SharedState | None = None
        self.processor: Any = None  # the TradeManager, once built
        self.started = False  # the run got through its start-up (reconciliation, workers, feed): it has a report
        self.t_feed = time.monotonic()
        self.record: Any = None  # the daemon's row for `status` (ops.liveness.DaemonRecord), once the database is up
        self.pipe_lock = threading.Lock()  # the sequencer, the feed's commands and worker restarts (two threads)
        self.supervisor: Supervisor | None = None
        self.live_where: dict[str, Any] | None = None  # the Manager's address and key file, once it runs
        self.live_at = float("-inf")
        self.log_sink: LogSink | None = None  # writes the children's log files, once they start
        self.dashboard: Any = None  # the operator's dashboard (dashboard.process.DashboardProcess), when served
        self.controls: Any = None  # the operator's controls as the trading thread takes them (OperatorDesk)

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.interrupts += 1
        if self.interrupts > 1:
            log.warning("second interrupt: exiting at once")
            os._exit(130)
        log.info("%s received: shutting down gracefully (press Ctrl-C again to exit at once)",
                 signal.Signals(signum).name)
        self.stop_requested.set()

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        cfg = self.cfg
        setup_logging(cfg.monitoring.log_level, cfg.resolve_path(cfg.monitoring.log_dir), self.secrets.secret_values())
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        if cfg.mode is ExecutionMode.LIVE and not self.opts.live_data:  # main() refuses it first; this is for callers
            log.error("mode live with a replay is refused: real orders must never follow replayed ticks")
            return EXIT_CONFIG
        if self.opts.scan is not None:
            from feeds.replay_check import log_findings
            log_findings(self.opts.scan)
        try:
            notify.start(cfg.notifications)  # sender threads: nothing on the trading thread waits for an endpoint
        except ValueError as e:
            log.error("notifications: %s", e)
            return EXIT_CONFIG
        notify.emit(DaemonStarted(self.opts.day.isoformat(), cfg.mode.value,
                                  "Fyers" if self.opts.live_data else f"replay of {self.opts.source}"))
        code = EXIT_ERROR
        try:
            code = self._run()
            return code
        except (DatabaseError, StartupError) as e:
            log.error("cannot run: %s", e)
            return EXIT_ERROR
        finally:  # however the run ended (a holiday, a start-up error, a bug): `status` says it is not running
            notify.stop(timeout_s=10)  # what is queued (the day's summary) goes out first, for at most 10 s
            remove_key(self.live_where)
            if self.log_sink is not None:
                self.log_sink.close()
            if self.record is not None and self.record.doc["ended"] is None:
                self.record.ended(code)

    def _run(self) -> int:
        import db as dbm
        from ops.liveness import DaemonRecord
        from pipeline.workers import WorkerPool

        cfg, opts = self.cfg, self.opts
        dbm.initialize_database(self.db_url)
        handler = self.state_db = dbm.DBHandler(dbm.setup(self.db_url)[0])
        self.record = DaemonRecord(handler, opts.day.isoformat(), cfg.mode.value,
                                   "Fyers" if opts.live_data else f"replay of {opts.source}")
        self.record.started()  # `status` tells a running daemon from one that has exited by this row
        session = self._session_for_day()
        if session is None:
            return EXIT_OK
        replay = not opts.live_data
        clock: Clock = ReplayClock() if replay else Clock()
        ctx = mp.get_context("spawn")
        # Ctrl-C reaches the whole process group; the driver decides. Loopback only, with a fresh authkey.
        manager, self.live_where = start_manager(ctx, self.db_url, _ignore_interrupts)
        shared = self.shared = SharedState(manager, manager.live_view())
        self.record.doc["live"] = self.live_where  # where `status` reads the live view (the key stays in its file)
        self.record.beat()
        problems = shared.validate()
        if problems:
            raise StartupError("shared state invalid: " + "; ".join(problems))
        symbols = [s.symbol for s in cfg.symbols]
        assignment = {i: symbols[i::cfg.workers] for i in range(cfg.workers)}
        assignment = {i: syms for i, syms in assignment.items() if syms}
        worker_ids = sorted(assignment)
        fyers_to_worker = {cfg.symbol(s).fyers: slot for slot, w in enumerate(worker_ids) for s in assignment[w]}
        symbol_to_worker = {s: slot for slot, w in enumerate(worker_ids) for s in assignment[w]}

        processor = (self.processor_factory or _trade_manager_factory)(
            cfg=cfg, secrets=self.secrets, db=handler, shared=shared, clock=clock, replay=replay,
            day=opts.day)
        processor.session = session
        self.processor = processor
        broker = processor.quote_sink_target() if hasattr(processor, "quote_sink_target") else None

        out_q = WorkerEvents(ctx, len(worker_ids))
        self.log_sink = LogSink(cfg.resolve_path(cfg.monitoring.log_dir),  # the workers' and the feed's logs
                                echo=[h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler])
        from pipeline.warmup import plan, start_time

        start_ts = None if opts.start is None else ist_epoch(opts.day, opts.start)
        warmup = None
        if cfg.market_data.warmup_from_history:
            warmup = plan(cfg, self.secrets, opts.live_data, opts.source, opts.day, start_ts, opts.record)
        pool = WorkerPool(ctx, cfg, [assignment[w] for w in worker_ids], out_q, self.db_url,
                          self.secrets.secret_values(), broker, log_channel=self.log_sink.channel, warmup=warmup)
        processor.set_notify(lambda sym, ctl: pool.send_control(symbol_to_worker[sym], ctl))
        sequencer = SignalSequencer(len(worker_ids))
        self.summary = {"signals": 0, "worker_restarts": 0}
        feed = None
        code = EXIT_ERROR
        t0 = time.monotonic()
        try:
            processor.start()
            if cfg.dashboard.port:  # its own process: reads the live view, records controls and rings for this
                # loop. Started before the workers and the feed: its start-up never holds ticks back
                from dashboard.process import start_live
                from execution.operator import OperatorDesk, new_bell

                bell = new_bell(ctx)
                controls = OperatorDesk(handler, opts.day, {s.symbol for s in cfg.symbols}, bell)
                controls.start_after_existing()  # before the dashboard can record one
                self.dashboard = start_live(ctx, cfg, opts.day, self.db_url, self.live_where, cfg.dashboard.port,
                                            bell, self.log_sink.channel, self.secrets.secret_values())
                if self.dashboard is not None:
                    self.controls = controls
            pool.disabled.update(getattr(processor, "disabled_strategies", lambda: {})())
            now = warmup[1] if warmup is not None else start_time(cfg, opts.live_data, opts.day, start_ts)
            pool.resume = (self._held_positions(processor, now), now)  # the books, settled by reconciliation
            pool.start()
            pool.wait_ready(timeout_s=60)
            settle_driver()  # start-up's objects out of the collector's way before the first tick
            self.t_feed = time.monotonic()
            feed = FeedProcess(ctx, cfg, self.secrets, opts, fyers_to_worker, pool, log_channel=self.log_sink.channel,
                               db_url=self.db_url)
            feed.start()
            self.started = True
            self.pids = {"manager": manager._process.pid, "feed": feed.proc.pid,  # noqa: SLF001 - for bench/
                         "tick_writer": feed.writer_proc.pid if feed.writer_proc is not None else None,
                         "workers": [pool.procs[i].pid for i in range(len(worker_ids))],
                         "dashboard": self.dashboard.pid if self.dashboard is not None else None}
            speed = "full speed" if opts.speed is None else f"{opts.speed:g}x real time"
            if opts.start is not None:
                speed += f" from {opts.start:%H:%M} IST"
            log.info("daemon running: %d symbols on %d workers, feed %s, mode %s", len(symbols), len(worker_ids),
                     "Fyers" if opts.live_data else f"replay of {opts.source} for {opts.day} at {speed}",
                     cfg.mode.value)
            notify.emit(DaemonReady(len(symbols), len(worker_ids), processor.rm.state.value
                                    if getattr(processor, "rm", None) is not None else "n/a"))

            def publish() -> None:  # on the supervisor's thread: health, then one round trip with every change
                if self.dashboard is not None:  # a dashboard process that died is started again
                    self.dashboard.check()
                shared.set(health=self.supervisor.health())
                shared.flush(min_interval_s=FLUSH_EVERY_S)

            self.supervisor = Supervisor(pool, feed, sequencer, self.pipe_lock, opts.live_data, self.summary,
                                         MAX_WORKER_RESTARTS, on_pass=publish)
            self.supervisor.start()
            code = self._loop(pool, sequencer, processor, feed, clock, out_q)
        finally:
            if self.supervisor is not None:
                self.supervisor.stop()  # before the workers are stopped on purpose
            if self.dashboard is not None:  # before the Manager it reads and the log sink it writes to
                self.dashboard.stop()
            self._shutdown(feed, pool, processor, shared, manager, out_q, sequencer, t0, code)
        return code

    def _shutdown(self, feed: Any, pool: Any, processor: Any, shared: SharedState,
                  manager: Any, out_q: Any, sequencer: SignalSequencer, t0: float, code: int = EXIT_ERROR) -> None:
        """Stop the feed, let workers drain and flush, stop them, close queues and connections; each step runs
        even if an earlier one failed, so shutdown is bounded."""
        import db as dbm

        def step(what: str, fn: Any) -> Any:
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - shutdown goes on
                log.warning("shutdown: %s failed: %s", what, e)
                return None

        log.debug("at shutdown: watermarks %s, %d signals waiting, worker stats %s", sequencer.through,
                  len(sequencer), pool.stats)
        if feed is not None:
            step("closing the feed", feed.close)
        step("stopping workers", lambda: pool.stop(out_q, on_message=lambda m: self._handle(m, feed, sequencer, pool),
                                                   timeout_s=10))
        step("stopping the trade manager", processor.stop)
        if self.started and getattr(processor, "rm", None) is not None:  # no report of a day that never began
            from ops.report import format_summary, write_report
            ticks = self._tick_counts(feed, pool)
            step("saving the tick counts", lambda: self._save_tick_counts(ticks))
            kept = self._earlier_report_kept(ticks)
            res = None if kept else step("writing the report",
                                         lambda: write_report(self.db_url, self.cfg, self.opts.day, ticks=ticks))
            if res is not None:
                log.info("report written to %s\n%s", res.out_dir, format_summary(res))
                notify.emit(DayClosed.from_summary(res.summary))
        active = step("reading shared state", lambda: shared.get("active_trades", 0))
        step("stopping the manager", manager.shutdown)
        step("removing the live view's key", lambda: remove_key(self.live_where))
        if self.log_sink is not None:  # the workers and the feed have gone: their last lines, then the files
            step("closing the log sink", self.log_sink.close)
        out_q.close()
        if self.record is not None:
            step("recording the exit", lambda: self.record.ended(code))
        step("closing database connections", dbm.dispose_engines)
        elapsed = time.monotonic() - t0
        stats = feed.stats() if feed is not None else {"dispatched": 0, "unroutable": 0, "dropped": 0}
        self.summary.update(stats, elapsed_s=elapsed, bad_ticks=pool.bad_ticks(), max_held_ticks=pool.max_held_ticks,
                            feed_wall_s=time.monotonic() - self.t_feed,
                            session_s=processor.session.close - processor.session.open)
        other = sum(self.opts.scan.unroutable.values()) if self.opts.scan is not None else 0
        log.info("shutdown complete in %.1fs: %d ticks dispatched (%d unroutable, %d dropped)%s, %d rejected by the "
                 "feed%s, %d bad at workers, %d signals, %d worker restarts, %s active trades left", elapsed,
                 stats["dispatched"], stats["unroutable"], stats["dropped"],
                 f", {other} in the file for symbols not in the config" if other else "", stats.get("rejected", 0),
                 "".join(f"; {r}: {n}" for r, n in stats.get("rejected_by_reason", {}).items()), pool.bad_ticks(),
                 self.summary["signals"], self.summary["worker_restarts"], active)

    def _earlier_report_kept(self, ticks: dict[str, Any]) -> bool:
        """A replay that delivered no tick traded nothing: it must not replace the day's report from an earlier
        run (kept, with a warning). Live, the day's report is always written."""
        if self.opts.live_data or ticks.get("dispatched", 0) > 0:
            return False
        out = self.cfg.resolve_path(self.cfg.monitoring.reports_dir) / self.opts.day.isoformat()
        if not (out / "summary.json").exists():
            return False
        log.warning("the replay delivered no tick to the strategies: the report of an earlier run in %s is kept",
                    out)
        return True

    def _held_positions(self, processor: Any, now: int) -> dict[str, Any]:
        """The ledger's open positions from before `now` that the strategies resume (pipeline.resume), each with
        its entry signal's note."""
        from pipeline.resume import held_positions

        ledger = getattr(processor, "ledger", None)
        if ledger is None:
            return {}

        def note(t: Any) -> str:
            if t.entry_order_id is None:
                return ""
            got = self.state_db.execute_sql(
                "SELECT s.note FROM orders o JOIN stock_signals s ON s.signal_id = o.signal_id WHERE o.id = :i "
                "ORDER BY s.id LIMIT 1", {"i": t.entry_order_id})
            return str(got[0][0] or "") if got else ""

        return held_positions(ledger.trades.values(), self.cfg, now, note)

    def _session_for_day(self) -> Any:
        """The day's session from the market calendar; None when the daemon should not run today (a holiday,
        or a live start after the close). A live start before the open waits for the pre-open."""
        from core.session import SessionTimes
        from ops.calendar import CalendarError, MarketCalendar

        cfg, opts = self.cfg, self.opts
        gateway = None
        if cfg.mode is not ExecutionMode.SIGNALS_ONLY and self.secrets.app_key:
            from gateway.openalgo import OpenAlgoGateway
            gateway = OpenAlgoGateway(self.secrets.host_server, self.secrets.app_key, timeout_s=3.0)
        try:
            cal = MarketCalendar(cfg.session, gateway=gateway, exchange=cfg.exchange)
            why = cal.check_day(opts.day)
            session = cal.session_times(opts.day)
        except CalendarError as e:
            raise StartupError(f"market calendar unreadable: {e}") from None
        finally:
            if gateway is not None:
                gateway.close()
        info = cal.day_info(opts.day)
        if info.special and "market/timings" in (info.reason or ""):
            session = SessionTimes.for_day(cfg.session, opts.day)  # plain timings differing from config: config wins
        if why:
            if opts.live_data:
                log.warning("%s; nothing to do today, exiting", why)
                return None
            log.warning("%s; replaying it anyway with the configured session", why)
            return SessionTimes.for_day(cfg.session, opts.day)
        log.info("%s", cal.describe(opts.day))
        if opts.live_data:
            now = time.time()
            if now >= session.close:
                log.warning("the market closed at %s; nothing to trade now (use LIVE_DATA=false to replay a day)",
                            to_ist(session.close).strftime("%H:%M IST"))
                return None
            if now < session.pre_open:
                log.info("waiting for the pre-open at %s (%.0f minutes)",
                         to_ist(session.pre_open).strftime("%H:%M IST"), (session.pre_open - now) / 60)
                if self._wait_until(session.pre_open):
                    return None
        return session

    def _wait_until(self, t: float) -> bool:
        """Wait for epoch time `t`, beating the heartbeat meanwhile (`status` shows a waiting daemon as
        running); True if a stop was requested first."""
        from ops.liveness import ALIVE_EVERY_S

        while (left := t - time.time()) > 0:
            if self.stop_requested.wait(min(left, ALIVE_EVERY_S)):
                return True
            if self.record is not None:
                self.record.beat()
        return self.stop_requested.is_set()

    def _tick_counts(self, feed: Any, pool: Any) -> dict[str, Any]:
        """What became of the day's ticks, for status and the report: rejected ones by reason."""
        st = feed.stats() if feed is not None else {}
        return {"day": self.opts.day.isoformat(), "dispatched": st.get("dispatched", 0),
                "rejected": st.get("rejected", 0), "rejected_by_reason": st.get("rejected_by_reason", {}),
                "unroutable": st.get("unroutable", 0), "dropped": st.get("dropped", 0),
                "rows_persisted": st.get("rows_persisted", 0),
                "bad_at_workers": pool.bad_ticks(),
                "quotes_refused_by_broker": sum(s.get("quotes_refused", 0) for s in pool.stopped.values()),
                **({"not_in_config": dict(self.opts.scan.unroutable)} if self.opts.scan is not None
                   and self.opts.scan.unroutable else {})}  # the replay file's ticks no worker trades, by symbol

    def _save_tick_counts(self, ticks: dict[str, Any]) -> None:
        """One small document, rewritten at each heartbeat and at the end (never per tick)."""
        self.state_db.set_state("tick_counts", ticks)

    def _heartbeat(self, rates: Any, pool: Any, processor: Any, now: float, feed: Any = None) -> None:
        from ops.status import heartbeat_line

        rm = getattr(processor, "rm", None)
        st: dict[str, Any] = {"ticks_per_s": rates.update({w: s[0] for w, s in sorted(pool.stats.items())}),
                              "signals": self.summary["signals"], "feed_time": now}
        if rm is not None:
            st.update(open_positions=len(rm.active_trades), realized_pnl=rm.capital - rm.start_capital,
                      unrealized_pnl=rm.unrealized_pnl(), trading_state=rm.state.value, state_reason=rm.state_reason)
            st["broker"] = None if processor.gateway is None else not processor.breaker.is_open
        log.info("%s", heartbeat_line(st))
        if feed is not None:
            try:
                self._save_tick_counts(self._tick_counts(feed, pool))
            except Exception as e:  # noqa: BLE001 - the counts are for status; trading goes on
                log.warning("could not save the tick counts: %s", e)

    def _publish_live(self, processor: Any, now: float) -> None:
        """The trading thread's part of the live view, into the shared state's local mirror (no round trip)."""
        rm = getattr(processor, "rm", None)
        if rm is not None:
            self.shared.set(**trading_view(rm, now, self.summary["signals"]))

    def _handle(self, msg: WorkerEvent, feed: Any, sequencer: SignalSequencer, pool: Any) -> None:
        """One event from a worker's event pipe, by its type (pipeline.messages)."""
        if isinstance(msg, WatermarkReached):  # the commonest first
            sequencer.watermark(msg.worker, msg.seq, msg.through_ts, msg.through_pos, msg.cap_ts, msg.cap_pos)
            pool.note_stats(msg.worker, msg.progress)
        elif isinstance(msg, SignalRaised):
            self.summary["signals"] += 1
            (self.held_latencies_ms if msg.held else self.latencies_ms).append(msg.latency_ms)
            now = time.time()
            if msg.sent_at:
                self.stage_ms["hop"].append((now - msg.sent_at) * 1000.0)
            self._received[id(msg.signal)] = now
            sequencer.add(msg.signal, msg.pos)
        elif isinstance(msg, MarksTaken):
            sequencer.add(msg.marks, msg.pos)
        elif isinstance(msg, CheckpointTaken):
            pool.checkpointed(msg.worker, msg.seq, msg.state, sequencer.through[msg.worker])
            if feed is not None:
                feed.checkpointed(msg.worker, msg.seq)
        elif isinstance(msg, WorkerStopped):
            pool.stopped[msg.worker] = msg.stats
        elif isinstance(msg, WorkerReady):
            pool.ready.add(msg.worker)
        elif isinstance(msg, StrategyTurnedOff):
            ev = msg.event
            pool.disabled.setdefault(ev.symbol, ev.reason)
            if hasattr(self.processor, "strategy_disabled"):
                self.processor.strategy_disabled(ev)
        else:
            log.warning("unexpected worker event ignored: %r", msg)

    def _loop(self, pool: Any, sequencer: SignalSequencer, processor: Any,
              feed: Any, clock: Clock, out_q: Any) -> int:
        from ops.progress import ReplayProgress
        from ops.status import TickRates

        progress = None
        if not self.opts.live_data:
            start = processor.session.open
            if self.opts.start is not None:
                start = max(start, ist_epoch(self.opts.day, self.opts.start))
            progress = ReplayProgress(start, processor.session.close)
            for h in logging.getLogger().handlers:
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    h.addFilter(progress.log_filter())
        try:
            return self._loop_body(pool, sequencer, processor, feed, clock, out_q, progress, TickRates())
        finally:
            if progress is not None:
                progress.close()

    def _loop_body(self, pool: Any, sequencer: SignalSequencer, processor: Any,
                   feed: Any, clock: Clock, out_q: Any, progress: Any, rates: Any) -> int:
        cfg = self.cfg
        from core.faults import kill_now, kill_time
        from ops.liveness import ALIVE_EVERY_S

        kill_at = None if self.opts.live_data else kill_time(self.opts.day)  # DAEMON_KILL_AT: tests only
        last_tick_check = last_heartbeat = last_alive = time.monotonic()
        last_dispatched = 0
        silence_reported = False
        lock = self.pipe_lock  # never held while the TradeManager works: the supervisor restarts meanwhile
        broker = getattr(processor, "io", None)  # its threads' answers wake the loop too (an order's ack)
        if not hasattr(broker, "wake_fd"):
            broker = None
        quiet = [broker.wake_fd] if broker is not None else []
        others = [feed.wake_fd, *quiet]
        wake_fd = feed.wake_fd
        while not self.stop_requested.is_set():
            # the workers' event pipes (a restarted worker's is new), the broker's answers, and the feed's reports
            # while a signal waits for its release: a cycle's report matters then (it says which workers had
            # nothing new); otherwise it is read with the next watermark (paced, a turn per cycle less)
            waiting = bool(len(sequencer))
            missed = feed.wake_on_reports(waiting)
            ready = out_q.wait(others if waiting else quiet, timeout=0.0 if missed else 0.02)
            with lock:
                for cycle in feed.take_delivered(woken=waiting and wake_fd in ready):
                    sequencer.delivered(*cycle)
                out_q.read(ready)  # the pipes that woke the loop (one read each); the others wait for their turn
                while True:  # drain what is there before acting
                    try:
                        self._handle(out_q.pop_nowait(), feed, sequencer, pool)
                    except queue.Empty:
                        break
                    except MessageError as e:  # workers check their signals first: this is a bug, not input
                        log.error("a worker event could not be read and is skipped: %s", e)
                released = list(sequencer.release())
            t_released = time.time() if released else 0.0
            for sig in released:
                if not self.opts.live_data:  # session events (cut-off, square-off) in time order with signals
                    clock.advance(sig.time)
                    if kill_at is not None and clock.now() >= kill_at:
                        kill_now()
                    processor.on_clock(clock.now())
                if isinstance(sig, Marks):  # open positions' prices: the global caps, in feed order
                    if hasattr(processor, "on_marks"):
                        processor.on_marks(sig)
                else:
                    t_in = self._received.pop(id(sig), None)
                    t0 = time.time()
                    processor.process_signal(sig)
                    if t_in is not None:
                        self.stage_ms["sequenced"].append((t_released - t_in) * 1000.0)
                        self.stage_ms["queued"].append((t0 - t_released) * 1000.0)
                        self.stage_ms["decided"].append((time.time() - t0) * 1000.0)
            pool.flush_control()  # feedback a busy worker's control pipe had no room for
            with lock:
                w = sequencer.low_watermark
                feed.low_watermark(w)
            if self.opts.live_data:
                now = clock.now()
            else:
                w = replay_time(w, feed.finished, feed.last_time)
                if w > 0:
                    clock.advance(w)
                now = clock.now()
            processor.on_clock(now)
            if kill_at is not None and now >= kill_at:
                kill_now()
            if broker is not None:
                broker.take_wakes()  # before the events are applied: one arriving meanwhile wakes the next wait
            processor.poll()
            if self.controls is not None:  # the operator's controls, in order, between signals
                self.controls.drain(processor, int(now))
            mono = time.monotonic()
            if mono - self.live_at >= LIVE_EVERY_S:  # positions and P&L for `status`, a few times a second
                self.live_at = mono
                self._publish_live(processor, now)
            if progress is not None:
                progress.update(feed.dispatched, now)
            if mono - last_alive >= ALIVE_EVERY_S:  # one small row for `status`, every few seconds
                last_alive = mono
                self.record.beat()
            if mono - last_heartbeat >= cfg.monitoring.heartbeat_seconds:
                last_heartbeat = mono
                self._heartbeat(rates, pool, processor, now, feed)
            if self.supervisor is not None and self.supervisor.failed:
                return EXIT_ERROR  # the supervisor logged why (a process that keeps dying, a replay's dead feed)
            if mono - last_tick_check >= cfg.monitoring.feed_silence_seconds:
                last_tick_check = mono
                if feed.dispatched == last_dispatched and processor.in_market_hours(now) and not feed.finished:
                    if not silence_reported:
                        log.warning("feed silent: no tick for %.0fs during market hours",
                                    cfg.monitoring.feed_silence_seconds)
                        notify.emit(FeedSilent(cfg.monitoring.feed_silence_seconds))
                        silence_reported = True
                else:
                    if silence_reported:
                        notify.emit(FeedResumed())
                    silence_reported = False
                last_dispatched = feed.dispatched
            if not self.opts.live_data and feed.finished and "feed_s" not in self.summary:
                self.summary["feed_s"] = time.monotonic() - self.t_feed
            with lock:
                finished = not self.opts.live_data and feed.finished and sequencer.low_watermark >= END_OF_FEED \
                    and not len(sequencer)
            if finished:
                self.summary["replay_s"] = time.monotonic() - self.t_feed
                log.info("replay finished: closing the session")
                processor.close_session(clock.now())
                return EXIT_OK
        return EXIT_OK


def replay_time(low_watermark: float, feed_finished: bool, feed_last_time: float) -> float:
    """The replay clock's next time from the workers' low watermark. Workers can see the end-of-feed marker
    before the feed's own final report reaches this process (a separate pipe and thread): until it does, the
    marker is no time at all, never a date some 146 billion years ahead."""
    if low_watermark >= END_OF_FEED:
        return feed_last_time if feed_finished else 0.0
    return low_watermark


def _finished_day_dashboard(cfg: Config, secrets: Secrets, raw_day: str | None) -> int:
    """`driver.py dashboard --date D`: a finished day's pages from its database, read-only, until Ctrl-C."""
    import db as dbm
    from dashboard.server import serve_finished_day

    try:
        day = date.fromisoformat(raw_day or "")
    except ValueError:
        print(f"--date: {raw_day!r} is not allowed -- the dashboard of a finished day needs --date YYYY-MM-DD",
              file=sys.stderr)
        return EXIT_CONFIG
    port = cfg.dashboard.port
    if port == 0:
        print("--dashboard-port: 0 is not allowed here -- give the port to serve the day on", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(cfg.monitoring.log_level, None, secrets.secret_values())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        dbm.initialize_database(secrets.database_url)
        handler = dbm.DBHandler(dbm.setup(secrets.database_url)[0])
    except DatabaseError as e:
        print(f"DATABASE_URL: {e}", file=sys.stderr)
        return EXIT_ERROR
    return serve_finished_day(cfg, handler, day, port, stop)


def _ignore_interrupts() -> None:
    """The Manager's initializer: Ctrl-C is for the driver; and it goes when the driver goes."""
    from core.faults import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def _trade_manager_factory(**kw: Any) -> Any:
    from trade_manager import TradeManager

    return TradeManager(**kw)


if __name__ == "__main__":
    sys.exit(main())
