"""The OpenAlgo-compatible paper broker, as its own process (it outlives a crash of the daemon).

    python paper_broker.py --host 127.0.0.1 --port 5000 [--state-file data/paper_broker.sqlite] [--reset]

It accepts exactly one API key: APP_KEY from the environment, else from .env. It listens on loopback only.
Prices come from the daemon in batches (POST /paper/v1/market); see paper/server.py for the admin routes
and paper/faults.py for the fault flags.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from core.net import is_loopback

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("paper_broker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paper_broker.py", description="OpenAlgo-compatible paper broker (loopback only).")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000, OpenAlgo's)")
    p.add_argument("--state-file", default="data/paper_broker.sqlite",
                   help="SQLite state file, relative to the project (default data/paper_broker.sqlite)")
    p.add_argument("--leverage", type=float, default=5.0, help="MIS margin leverage (default 5)")
    p.add_argument("--funds", type=float, default=10_000_000.0, help="starting funds in rupees (default 1 crore)")
    p.add_argument("--order-rate", type=float, default=10.0, help="placeorder/modify/cancel calls per second per IP")
    p.add_argument("--smart-rate", type=float, default=10.0, help="placesmartorder calls per second per IP")
    p.add_argument("--api-rate", type=float, default=50.0, help="every other /api/v1 call per second per IP")
    p.add_argument("--instruments", default=None,
                   help="instrument master CSV (default paper/nse_instruments.csv; see paper/instruments.py)")
    p.add_argument("--options-table", default=None,
                   help="index options table (default paper/options/underlyings.csv: strikes, lots, freeze, smile)")
    p.add_argument("--options-expiries", default=None,
                   help="options expiry calendar (default paper/options/expiries.csv)")
    p.add_argument("--history-seed", type=int, default=7,
                   help="seed of the synthetic candles /api/v1/history serves (default 7, config's replay.seed)")
    p.add_argument("--reset", action="store_true", help="wipe orders, trades, positions and quotes at start")
    p.add_argument("--clock-mode", choices=("wall", "replay"), default="wall", help="clock mode after --reset")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--log-dir", default=None, help="also write logs/paper_broker.log here (default: stderr only)")
    f = p.add_argument_group("fault injection (tests only; off by default)")
    f.add_argument("--seed", type=int, default=None, help="seed for the fault decisions")
    f.add_argument("--reject-rate", type=float, default=0.0)
    f.add_argument("--error500-rate", type=float, default=0.0)
    f.add_argument("--timeout-rate", type=float, default=0.0)
    f.add_argument("--timeout-sleep-s", type=float, default=6.0)
    f.add_argument("--timeout-placed", action="store_true", help="timeout fault places the order before sleeping")
    f.add_argument("--lost-response-rate", type=float, default=0.0)
    f.add_argument("--slow-ms", type=float, default=0.0)
    f.add_argument("--open-delay-s", type=float, default=0.0)
    f.add_argument("--partial-fills", type=int, default=0)
    f.add_argument("--partial-fill-span-s", type=float, default=2.0)
    return p




def load_api_key() -> str | None:
    key = (os.environ.get("APP_KEY") or "").strip()
    if key:
        return key
    env = ROOT / ".env"
    if env.exists():
        from dotenv import dotenv_values
        return (dotenv_values(env).get("APP_KEY") or "").strip() or None
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host):
        print(f"paper_broker: refusing to listen on {args.host!r}: the paper broker listens on loopback only "
              "(use 127.0.0.1, ::1 or localhost)", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        print(f"paper_broker: --port {args.port} is not a TCP port", file=sys.stderr)
        return EXIT_USAGE
    for name in ("leverage", "order_rate", "smart_rate", "api_rate"):
        if getattr(args, name) < 1:
            print(f"paper_broker: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return EXIT_USAGE
    if args.funds <= 0:
        print("paper_broker: --funds must be positive", file=sys.stderr)
        return EXIT_USAGE
    key = load_api_key()
    if not key:
        print("paper_broker: APP_KEY is not set (environment or .env); ./dev.sh setup writes one", file=sys.stderr)
        return EXIT_USAGE

    from core.logs import setup_logging
    from core.switching import shorten_switch_interval
    from paper.engine import Engine
    from paper.faults import FaultConfig, FaultInjector
    from paper.instance import AlreadyRunning, InstanceLock
    from paper.instruments import DEFAULT_FILE, InstrumentFileError
    from paper.instruments import load as load_instruments
    from paper.options.contracts import EXPIRIES_FILE, UNDERLYINGS_FILE, OptionsTableError
    from paper.options.contracts import load as load_options
    from paper.options.desk import OptionsDesk
    from paper.server import App, Housekeeper, Limits, PaperHTTPServer
    from paper.service import PaperBroker
    from paper.store import Store

    setup_logging(args.log_level, Path(args.log_dir) if args.log_dir else None, secrets=[key],
                  filename="paper_broker.log")
    try:
        faults = FaultConfig.from_dict({
            "reject_rate": args.reject_rate, "error500_rate": args.error500_rate, "timeout_rate": args.timeout_rate,
            "timeout_sleep_s": args.timeout_sleep_s, "timeout_placed": args.timeout_placed,
            "lost_response_rate": args.lost_response_rate, "slow_ms": args.slow_ms,
            "open_delay_s": args.open_delay_s, "partial_fills": args.partial_fills,
            "partial_fill_span_s": args.partial_fill_span_s, "seed": args.seed})
    except ValueError as e:
        print(f"paper_broker: bad fault flag: {e}", file=sys.stderr)
        return EXIT_USAGE

    try:
        instruments = load_instruments(args.instruments or DEFAULT_FILE)
    except InstrumentFileError as e:
        print(f"paper_broker: --instruments: {e}", file=sys.stderr)
        return EXIT_USAGE

    try:
        desk = OptionsDesk(load_options(args.options_table or UNDERLYINGS_FILE, args.options_expiries or EXPIRIES_FILE))
    except OptionsTableError as e:
        print(f"paper_broker: options tables: {e}", file=sys.stderr)
        return EXIT_USAGE

    state = Path(args.state_file)
    state = state if state.is_absolute() else ROOT / state
    # before the state file is opened: a second broker must not even load (or --reset) the first one's books
    instance = InstanceLock(state)
    try:
        instance.acquire(f"http://{args.host}:{args.port}")
    except AlreadyRunning as e:
        print(f"paper_broker: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"paper_broker: cannot lock {instance.path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    try:
        store = Store(state)
        engine = Engine(store, leverage=args.leverage, starting_funds=args.funds, instruments=instruments,
                        derivatives=desk)
    except Exception as e:  # noqa: BLE001 - a corrupt or unreadable state file is the user's to fix
        print(f"paper_broker: cannot open state file {state}: {e}", file=sys.stderr)
        return EXIT_ERROR
    broker = PaperBroker(engine, history_seed=args.history_seed)
    if args.reset:
        broker.reset(args.clock_mode, None, None)
    app = App(broker, key, Limits(args.order_rate, args.smart_rate, args.api_rate), FaultInjector(faults))
    try:
        server = PaperHTTPServer((args.host, args.port), app)
    except OSError as e:
        print(f"paper_broker: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    shorten_switch_interval()  # a request's handler waits less for a market push or housekeeping to yield
    keeper = Housekeeper(broker)
    keeper.start()

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    instance.update(f"http://{host}:{port}")
    log.info("paper broker listening on http://%s:%s (state %s, %s clock, faults %s)", host, port, state,
             engine.mode, "on" if faults.active else "off")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        keeper.stopping.set()
        server.server_close()
        with engine.lock:
            engine.flush()
            store.close()
        instance.release()
        log.info("paper broker stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
