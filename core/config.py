"""config.yaml and .env, loaded and validated once at start-up into frozen, typed objects.

Every problem is collected (not just the first) and reported as "key: value -- what is allowed", so
`driver.py --check` can list them all. Nothing here falls back silently to a default for a value the
user wrote: an unknown key, a wrong type or an out-of-range number is an error.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date as _date
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from core.costs import DEFAULT_RATES, RATE_KEYS, ChargeRates, CostTable, rates_from_mapping
from core.enums import ExecutionMode, Product, TickPersistence, UnknownPositionPolicy
from core.net import is_loopback
from notify.config import NotificationsConfig, parse_notifications
from options.spec import OptionsSpec, parse_options
from strategies import STRATEGY_KINDS, kind_problem, resolve_kind, validate_params

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"
DEFAULT_ENV_PATH = PROJECT_ROOT / ".env"

EXCHANGES = ("NSE", "BSE")
INSTRUMENTS = ("equity", "options")
SYMBOL_EXCHANGES = ("NSE", "NSE_INDEX")  # a symbol's own `exchange:`: its shares, or an index (options only)
COSTED_EXCHANGES = ("NSE",)  # exchanges whose charges costs.rates holds (BSE's transaction charge differs)
_SYMBOL_RE = re.compile(r"^[A-Z0-9&_\-]{1,32}$")
_FYERS_RE = re.compile(r"^[A-Z]+:[A-Z0-9&_\-]+$")
MAX_RISK_FREE_RATE = 0.5  # a larger yearly rate is a percentage written where a fraction belongs (6.5, not 0.065)


class ConfigError(Exception):
    """Start-up must stop: the message lists every problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# ---------------------------------------------------------------- sections

def _f(default: Any, *, minimum: float | None = None, maximum: float | None = None,
       min_exclusive: bool = False, allowed: tuple | None = None, text_like: bool = False) -> Any:
    return field(default=default, metadata={"min": minimum, "max": maximum, "min_exclusive": min_exclusive,
                                             "allowed": allowed, "text_like": text_like})


@dataclass(frozen=True)
class StrategySpec:
    name: str
    kind: str          # a strategy file's kind is stored with its path made absolute (workers load it from anywhere)
    params: Mapping[str, Any]


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str        # OpenAlgo name, e.g. SBIN
    fyers: str         # Fyers ticker, e.g. NSE:SBIN-EQ
    strategy: str      # name of a StrategySpec
    exchange: str | None = None     # the symbol's own quote exchange (NSE_INDEX for an index); None: the config's
    options: OptionsSpec | None = None  # instrument: options -- signals on this index are traded as its options

    @property
    def is_options(self) -> bool:
        return self.options is not None


@dataclass(frozen=True)
class RiskConfig:
    capital: float = _f(1_000_000.0, minimum=0, min_exclusive=True)
    risk_per_trade: float = _f(0.01, minimum=0, maximum=1, min_exclusive=True)
    max_allocation: float = _f(200_000.0, minimum=0, min_exclusive=True)
    max_active_trades: int = _f(10, minimum=1)
    max_order_notional: float = _f(1_000_000.0, minimum=0, min_exclusive=True)
    margin_multiplier: float = _f(5.0, minimum=1)
    symbol_max_loss_pct: float | None = _f(-2.0)
    symbol_max_profit_pct: float | None = _f(4.0)
    force_exit_on_cap: bool = _f(True)
    global_max_loss_pct: float | None = _f(-2.0)
    global_max_profit_pct: float | None = _f(5.0)
    daily_loss_limit: float | None = _f(25_000.0, minimum=0, min_exclusive=True)
    max_drawdown_pct: float | None = _f(3.0, minimum=0, min_exclusive=True)
    flatten_on_halt: bool = _f(True)
    cooldown_minutes: float = _f(15.0, minimum=0)
    max_incomplete_attempts: int = _f(3, minimum=1)
    max_cost_share_of_risk: float | None = _f(0.25, minimum=0, min_exclusive=True)


@dataclass(frozen=True)
class CostsConfig:
    slippage_pct: float = _f(0.02, minimum=0, maximum=5)
    rates: tuple[ChargeRates, ...] = _f(DEFAULT_RATES)  # parsed by _cost_rates: a dated list of periods

    @property
    def table(self) -> CostTable:
        return CostTable(self.rates)


@dataclass(frozen=True)
class OrdersConfig:
    poll_interval_s: float = _f(1.0, minimum=0.05, maximum=60)
    fill_timeout_s: float = _f(30.0, minimum=1)
    rate_limit_per_s: float = _f(8.0, minimum=0.1, maximum=10)
    broker_requests_per_s: int = _f(10, minimum=1, maximum=1000)
    request_timeout_s: float = _f(5.0, minimum=0.1, maximum=60)
    circuit_breaker_failures: int = _f(5, minimum=1)
    circuit_breaker_cooldown_s: float = _f(30.0, minimum=1)
    strategy_tag: str = _f("intraday-daemon")


@dataclass(frozen=True)
class SessionConfig:
    pre_open: dtime = _f(dtime(9, 0))
    open: dtime = _f(dtime(9, 15))
    entry_cutoff: dtime = _f(dtime(15, 0))
    square_off: dtime = _f(dtime(15, 10))
    close: dtime = _f(dtime(15, 30))


@dataclass(frozen=True)
class MarketDataConfig:
    persist: TickPersistence = _f(TickPersistence.OFF, allowed=tuple(TickPersistence))
    sample_seconds: float = _f(1.0, minimum=0, min_exclusive=True)
    batch_rows: int = _f(2000, minimum=1)
    flush_seconds: float = _f(1.0, minimum=0.01)
    # tick validation in the feed process (pipeline.tick_validator)
    max_ahead_s: float = _f(60.0, minimum=1)
    gap_confirm_ticks: int = _f(3, minimum=2)
    max_price_move_pct: float = _f(40.0, minimum=0, min_exclusive=True)
    # strategies take the candles they need from history before the first tick (pipeline.warmup)
    warmup_from_history: bool = _f(True)


@dataclass(frozen=True)
class ReplayConfig:
    source: str = _f("synthetic")
    speed: str = _f("max", text_like=True)
    seed: int = _f(7)
    date: str | None = _f(None, text_like=True)
    max_bad_row_share: float = _f(0.01, minimum=0, maximum=1)  # a recorded file with more malformed lines is refused


@dataclass(frozen=True)
class PaperBrokerConfig:
    leverage: float = _f(5.0, minimum=1)
    starting_funds: float = _f(10_000_000.0, minimum=0, min_exclusive=True)
    order_rate_limit_per_s: float = _f(10.0, minimum=1)
    state_file: str = _f("data/paper_broker.sqlite")


@dataclass(frozen=True)
class ReconcileConfig:
    unknown_position_policy: UnknownPositionPolicy = _f(UnknownPositionPolicy.HALT,
                                                        allowed=tuple(UnknownPositionPolicy))
    order_match_window_s: float = _f(120.0, minimum=1)


@dataclass(frozen=True)
class MonitoringConfig:
    heartbeat_seconds: float = _f(30.0, minimum=1)
    feed_silence_seconds: float = _f(60.0, minimum=1)
    log_level: str = _f("INFO", allowed=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_dir: str = _f("logs")
    reports_dir: str = _f("reports")


@dataclass(frozen=True)
class DashboardConfig:
    host: str = _f("127.0.0.1")  # loopback only: refused otherwise, like the paper broker
    port: int = _f(0, minimum=0)  # 0: no dashboard


@dataclass(frozen=True)
class BacktestConfig:
    # the yearly risk-free rate Sharpe and Sortino subtract, as a fraction (0.065 = 6.5%, about India's 91-day
    # T-bill yield); its range is checked in _cross_checks so the message can say "a fraction"
    risk_free_rate: float = _f(0.065)


@dataclass(frozen=True)
class Config:
    mode: ExecutionMode
    exchange: str
    product: Product
    workers: int
    strategies: Mapping[str, StrategySpec]
    symbols: tuple[SymbolSpec, ...]
    risk: RiskConfig
    costs: CostsConfig
    orders: OrdersConfig
    session: SessionConfig
    market_data: MarketDataConfig
    replay: ReplayConfig
    paper_broker: PaperBrokerConfig
    reconcile: ReconcileConfig
    monitoring: MonitoringConfig
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    path: Path = PROJECT_ROOT / "config.yaml"

    def symbol(self, name: str) -> SymbolSpec:
        return self._by_symbol[name]

    def quote_exchange(self, name: str) -> str:
        """Where `name`'s quotes belong at the broker: its own exchange (NSE_INDEX for an index), else the
        config's; a name not in config (an option contract) gets the config's."""
        spec = self._by_symbol.get(name)
        return spec.exchange if spec is not None and spec.exchange else self.exchange

    @functools.cached_property
    def _by_symbol(self) -> dict[str, SymbolSpec]:
        """Built once per Config (it is frozen; `replace` makes a new one): a backtest's day asks it per symbol."""
        return {s.symbol: s for s in self.symbols}

    def resolve_path(self, p: str) -> Path:
        """Relative paths in config are relative to the project, not to the working directory."""
        path = Path(p)
        return path if path.is_absolute() else PROJECT_ROOT / path


# ---------------------------------------------------------------- secrets and switches (.env)

@dataclass(frozen=True)
class Secrets:
    """Values from the environment or `.env`. repr() never shows a secret."""

    app_key: str | None
    host_server: str
    live_data: bool
    database_url: str | None
    fyers_app_id: str | None
    fyers_access_token: str | None

    def __repr__(self) -> str:
        def mask(v: str | None) -> str:
            return "unset" if not v else "***"
        return (f"Secrets(app_key={mask(self.app_key)}, host_server={self.host_server!r}, "
                f"live_data={self.live_data}, database_url={'set' if self.database_url else 'unset'}, "
                f"fyers_app_id={mask(self.fyers_app_id)}, fyers_access_token={mask(self.fyers_access_token)})")

    __str__ = __repr__

    def secret_values(self) -> list[str]:
        """Everything that must never reach a log line, a row or an error message."""
        vals = [self.app_key, self.fyers_access_token]
        if self.database_url and "@" in self.database_url:
            creds = self.database_url.split("://", 1)[-1].rsplit("@", 1)[0]
            if ":" in creds:
                vals.append(creds.split(":", 1)[1])
        return [v for v in vals if v and len(v) >= 4]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_secrets(env_path: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Secrets, list[str]]:
    """Process environment wins over `.env`, as python-dotenv's load_dotenv(override=False) does."""
    env_path = DEFAULT_ENV_PATH if env_path is None else env_path
    file_vals = {k: v for k, v in dotenv_values(env_path).items() if v is not None} if env_path.exists() else {}
    env = dict(file_vals)
    env.update({k: v for k, v in (os.environ if environ is None else environ).items()})
    problems: list[str] = []
    raw_live = env.get("LIVE_DATA", "false").strip().lower()
    if raw_live not in _TRUE | _FALSE:
        problems.append(f"LIVE_DATA: {env.get('LIVE_DATA')!r} is not allowed -- use true or false")
    host = (env.get("HOST_SERVER") or "http://127.0.0.1:5000").strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+(:\d+)?$", host):
        problems.append(f"HOST_SERVER: {host!r} is not allowed -- use a URL such as http://127.0.0.1:5000")
    s = Secrets(
        app_key=(env.get("APP_KEY") or "").strip() or None,
        host_server=host,
        live_data=raw_live in _TRUE,
        database_url=(env.get("DATABASE_URL") or "").strip() or None,
        fyers_app_id=(env.get("FYERS_APP_ID") or "").strip() or None,
        fyers_access_token=(env.get("FYERS_ACCESS_TOKEN") or "").strip() or None,
    )
    return s, problems


def check_secrets_for_mode(cfg: Config, secrets: Secrets) -> list[str]:
    problems = []
    if cfg.mode in (ExecutionMode.PAPER, ExecutionMode.LIVE) and not secrets.app_key:
        problems.append(f"APP_KEY: unset -- mode {cfg.mode.value} needs the OpenAlgo API key in .env "
                        "(./dev.sh setup writes one for the paper broker)")
    if cfg.mode is ExecutionMode.LIVE and "HOST_SERVER" not in os.environ and not _env_file_has("HOST_SERVER"):
        problems.append("HOST_SERVER: unset -- mode live needs the URL of your OpenAlgo server in .env")
    if cfg.mode is ExecutionMode.LIVE and not secrets.live_data:
        problems.append("mode: 'live' is not allowed with LIVE_DATA=false -- mode live sends real orders, and a "
                        "replay's ticks (synthetic or recorded) are not the market; replay with mode paper or "
                        "signals_only, or set LIVE_DATA=true to trade the Fyers feed")
    if secrets.live_data:
        if not secrets.fyers_app_id:
            problems.append("FYERS_APP_ID: unset -- LIVE_DATA=true needs the Fyers app id (e.g. XXXXXXXXXX-100)")
        if not secrets.fyers_access_token:
            problems.append("FYERS_ACCESS_TOKEN: unset -- LIVE_DATA=true needs today's Fyers access token")
    return problems


def _env_file_has(key: str) -> bool:
    return DEFAULT_ENV_PATH.exists() and bool(dotenv_values(DEFAULT_ENV_PATH).get(key))


# ---------------------------------------------------------------- loading

_SECTIONS: dict[str, type] = {
    "risk": RiskConfig, "costs": CostsConfig, "orders": OrdersConfig, "session": SessionConfig,
    "market_data": MarketDataConfig, "replay": ReplayConfig, "paper_broker": PaperBrokerConfig,
    "reconcile": ReconcileConfig, "monitoring": MonitoringConfig, "backtest": BacktestConfig,
    "dashboard": DashboardConfig,
}
_TOP_KEYS = {"mode", "exchange", "product", "workers", "strategies", "default_strategy", "symbols", "notifications",
             *_SECTIONS}


def _type_name(t: Any) -> str:
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a string",
            dtime: "a time HH:MM"}.get(t, getattr(t, "__name__", str(t)))


def _coerce(key: str, value: Any, f: dataclasses.Field, problems: list[str]) -> Any:
    ann = f.type if not isinstance(f.type, str) else eval(f.type, globals())  # noqa: S307 - our own annotations
    optional = getattr(ann, "__args__", None) is not None and type(None) in ann.__args__
    base = next((a for a in getattr(ann, "__args__", (ann,)) if a is not type(None)), ann)
    meta = f.metadata
    if value is None:
        if optional:
            return None
        problems.append(f"{key}: null is not allowed -- expected {_type_name(base)}")
        return f.default
    try:
        if base is bool:
            if not isinstance(value, bool):
                raise TypeError
            out: Any = value
        elif base is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            out = value
        elif base is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise TypeError
        elif base is str:
            if meta.get("text_like") and isinstance(value, (int, float, _date)) and not isinstance(value, bool):
                value = value.isoformat() if isinstance(value, _date) else str(value)  # YAML typed it for us
            if not isinstance(value, str):
                raise TypeError
            out = value
        elif base is dtime:
            if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 09:15 as sexagesimal 555
                value = f"{value // 60:02d}:{value % 60:02d}"
            if not isinstance(value, str) or not re.match(r"^\d{1,2}:\d{2}$", value):
                raise TypeError
            hh, mm = (int(x) for x in value.split(":"))
            out = dtime(hh, mm)
        elif isinstance(base, type) and issubclass(base, str):  # our enums
            if isinstance(value, bool) and str(value).lower() in ("false", "true"):
                value = {False: "off", True: "on"}[value]  # YAML 1.1 reads a bare off/on as a boolean
            out = base(value)
        else:
            out = value
    except (TypeError, ValueError):
        allowed = meta.get("allowed")
        what = ", ".join(str(a) for a in allowed) if allowed else _type_name(base)
        problems.append(f"{key}: {value!r} is not allowed -- expected {what}")
        return f.default
    allowed = meta.get("allowed")
    if allowed and out not in allowed:
        problems.append(f"{key}: {value!r} is not allowed -- expected one of {', '.join(str(a) for a in allowed)}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if lo is not None and (out < lo or (meta.get("min_exclusive") and out == lo)):
            rng = f"greater than {lo}" if meta.get("min_exclusive") else f"at least {lo}"
            if hi is not None:
                rng += f" and at most {hi}"
            problems.append(f"{key}: {value!r} is not allowed -- must be {rng}")
        elif hi is not None and out > hi:
            problems.append(f"{key}: {value!r} is not allowed -- must be at most {hi}")
    return out


def _section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{name}: {raw!r} is not allowed -- expected a mapping of settings")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in fields:
            problems.append(f"{name}.{k}: unknown key -- allowed keys are {', '.join(fields)}")
    values = {n: _coerce(f"{name}.{n}", raw[n], f, problems) for n, f in fields.items() if n in raw}
    return cls(**values)


def _derive_fyers(symbol: str, exchange: str, index: bool = False) -> str:
    return f"{exchange}:{symbol}-INDEX" if index else f"{exchange}:{symbol}-EQ"


def parse_config(raw: Any, path: Path = DEFAULT_CONFIG_PATH) -> Config:
    """Turn the YAML document into a Config or raise ConfigError listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{path.name}: expected a mapping of settings at the top level, got {type(raw).__name__}"])
    for k in raw:
        if k not in _TOP_KEYS:
            problems.append(f"{k}: unknown key -- allowed top-level keys are {', '.join(sorted(_TOP_KEYS))}")

    def enum_value(key: str, enum: type, default: Any) -> Any:
        v = raw.get(key, default)
        try:
            return enum(v)
        except ValueError:
            problems.append(f"{key}: {v!r} is not allowed -- expected one of {', '.join(e.value for e in enum)}")
            return default

    mode = enum_value("mode", ExecutionMode, ExecutionMode.PAPER)
    product = enum_value("product", Product, Product.MIS)
    if product is not Product.MIS:
        problems.append(f"product: {product.value!r} is not allowed -- this intraday daemon trades MIS only")
    exchange = raw.get("exchange", "NSE")
    if exchange not in EXCHANGES:
        problems.append(f"exchange: {exchange!r} is not allowed -- expected one of {', '.join(EXCHANGES)}")
    workers = raw.get("workers", 8)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        problems.append(f"workers: {workers!r} is not allowed -- expected a whole number from 1 to 64")
        workers = 8

    strategies: dict[str, StrategySpec] = {}
    raw_strats = raw.get("strategies")
    if not isinstance(raw_strats, dict) or not raw_strats:
        problems.append(f"strategies: {raw_strats!r} is not allowed -- expected a mapping of named strategies, "
                        f"each with kind ({', '.join(STRATEGY_KINDS)}) and params")
        raw_strats = {}
    for name, spec in raw_strats.items():
        if not isinstance(spec, dict):
            problems.append(f"strategies.{name}: {spec!r} is not allowed -- expected kind and params")
            continue
        for k in spec:
            if k not in ("kind", "params"):
                problems.append(f"strategies.{name}.{k}: unknown key -- allowed keys are kind, params")
        written = spec.get("kind")
        kind = resolve_kind(written, path.resolve().parent)  # a strategy file: relative to this config's folder
        why = kind_problem(kind)
        if why:
            problems.append(f"strategies.{name}.kind: {written!r} is not allowed -- {why}")
            continue
        params = spec.get("params") or {}
        if not isinstance(params, dict):
            problems.append(f"strategies.{name}.params: {params!r} is not allowed -- expected a mapping")
            continue
        problems.extend(f"strategies.{name}.params.{p}" for p in validate_params(kind, params))
        strategies[str(name)] = StrategySpec(str(name), kind, dict(params))

    default_strategy = raw.get("default_strategy")
    if default_strategy is not None and default_strategy not in raw_strats:
        problems.append(f"default_strategy: {default_strategy!r} is not allowed -- unknown strategy; "
                        f"expected one of {', '.join(map(str, raw_strats)) or '(none defined)'}")
    symbols: list[SymbolSpec] = []
    seen: set[str] = set()
    raw_syms = raw.get("symbols")
    if not isinstance(raw_syms, list) or not raw_syms:
        problems.append(f"symbols: {raw_syms!r} is not allowed -- expected a non-empty list of symbols such as SBIN")
        raw_syms = []
    for i, entry in enumerate(raw_syms):
        key = f"symbols[{i}]"
        if isinstance(entry, str):
            entry = {"symbol": entry}
        if not isinstance(entry, dict):
            problems.append(f"{key}: {entry!r} is not allowed -- expected a symbol name or a mapping with symbol")
            continue
        for k in entry:
            if k not in ("symbol", "fyers", "strategy", "exchange", "instrument", "options"):
                problems.append(f"{key}.{k}: unknown key -- allowed keys are symbol, fyers, strategy, exchange, "
                                "instrument, options")
        opts = _instrument(entry, key, problems)
        sym_exchange = _symbol_exchange(entry, key, opts is not None, problems)
        sym = entry.get("symbol")
        if not isinstance(sym, str) or not _SYMBOL_RE.match(sym):
            problems.append(f"{key}.symbol: {sym!r} is not allowed -- expected an OpenAlgo symbol such as SBIN "
                            "(upper case, no exchange prefix, no -EQ)")
            continue
        if sym in seen:
            problems.append(f"{key}.symbol: {sym!r} is not allowed -- duplicate symbol; each symbol appears once")
            continue
        seen.add(sym)
        fy = entry.get("fyers") or _derive_fyers(sym, exchange if isinstance(exchange, str) else "NSE",
                                                 sym_exchange == "NSE_INDEX")
        if not isinstance(fy, str) or not _FYERS_RE.match(fy):
            problems.append(f"{key}.fyers: {fy!r} is not allowed -- expected a Fyers ticker such as NSE:SBIN-EQ")
        strat = entry.get("strategy", default_strategy)
        if strat is None:
            problems.append(f"{key}.strategy: missing -- name a strategy or set default_strategy")
            continue
        if strat not in raw_strats:
            problems.append(f"{key}.strategy: {strat!r} is not allowed -- unknown strategy; "
                            f"expected one of {', '.join(map(str, raw_strats)) or '(none defined)'}")
            continue
        symbols.append(SymbolSpec(sym, fy, str(strat), sym_exchange, opts))
    fy_seen: dict[str, str] = {}
    for s in symbols:
        if s.fyers in fy_seen:
            problems.append(f"symbols: {s.symbol} and {fy_seen[s.fyers]} map to the same Fyers ticker {s.fyers}")
        fy_seen[s.fyers] = s.symbol

    if isinstance(exchange, str) and exchange in EXCHANGES and exchange not in COSTED_EXCHANGES:
        problems.append(f"exchange: {exchange!r} is not allowed -- costs.rates holds NSE's charges only "
                        f"(BSE's transaction charge differs and is not sourced); use one of "
                        f"{', '.join(COSTED_EXCHANGES)}")
    raw_costs = raw.get("costs")
    if isinstance(raw_costs, dict) and "commission_per_order" in raw_costs:
        problems.append(f"costs.commission_per_order: {raw_costs['commission_per_order']!r} is no longer used -- "
                        "replaced by costs.rates (brokerage min(Rs 20, 0.03%) per order and the statutory "
                        "charges, by date); delete the key and copy costs.rates from the shipped config.yaml")
        raw = {**raw, "costs": {k: v for k, v in raw_costs.items() if k != "commission_per_order"}}
    sections = {name: _section(name, cls, raw.get(name), problems) for name, cls in _SECTIONS.items()}
    if isinstance(raw.get("costs"), dict) and "rates" in raw["costs"]:
        sections["costs"] = dataclasses.replace(sections["costs"], rates=_cost_rates(raw["costs"]["rates"], problems))
    problems.extend(_cross_checks(sections))
    notifications = parse_notifications(raw.get("notifications"), problems)
    if problems:
        raise ConfigError(problems)
    return Config(mode=mode, exchange=exchange, product=product, workers=workers, strategies=strategies,
                  symbols=tuple(symbols), path=path, notifications=notifications, **sections)


def _instrument(entry: dict, key: str, problems: list[str]) -> OptionsSpec | None:
    """instrument: equity (the default, None) or options with its options block, checked in full (its spec)."""
    instrument = entry.get("instrument", "equity")
    spec = None
    if instrument not in INSTRUMENTS:
        problems.append(f"{key}.instrument: {instrument!r} is not allowed -- expected one of {', '.join(INSTRUMENTS)}")
    elif instrument == "options":
        spec = parse_options(entry.get("options"), f"{key}.options", problems)
    if "options" in entry and instrument != "options":
        problems.append(f"{key}.options: allowed only with instrument: options")
    return spec


def _symbol_exchange(entry: dict, key: str, options: bool, problems: list[str]) -> str | None:
    """A symbol's own `exchange:` (where its quotes come from): NSE_INDEX names an index, which is only traded
    through its options; None when not written (the config's exchange)."""
    ex = entry.get("exchange")
    if ex is None:
        return None
    if ex not in SYMBOL_EXCHANGES:
        problems.append(f"{key}.exchange: {ex!r} is not allowed -- expected one of {', '.join(SYMBOL_EXCHANGES)}")
        return None
    if ex == "NSE_INDEX" and not options:
        problems.append(f"{key}.exchange: 'NSE_INDEX' is not allowed without instrument: options -- an index "
                        "cannot be bought as a share")
        return None
    return str(ex)


def _cost_rates(raw: Any, problems: list[str]) -> tuple[ChargeRates, ...]:
    """costs.rates: periods with `from: YYYY-MM-DD`, ascending; the first names every rate, a later one only
    what changed (the rest carries over). Rates are non-negative numbers."""
    key = "costs.rates"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: {raw!r} is not allowed -- expected a list of periods, each with from: YYYY-MM-DD "
                        f"and the rates {', '.join(RATE_KEYS)} (see the shipped config.yaml)")
        return ()
    out: list[ChargeRates] = []
    current: dict[str, Any] = {}
    last: _date | None = None
    for i, period in enumerate(raw):
        k = f"{key}[{i}]"
        if not isinstance(period, dict):
            problems.append(f"{k}: {period!r} is not allowed -- expected a mapping with from and rates")
            return ()
        for name in period:
            if name != "from" and name not in RATE_KEYS:
                problems.append(f"{k}.{name}: unknown key -- allowed keys are from, {', '.join(RATE_KEYS)}")
        start = period.get("from")
        if isinstance(start, str):
            try:
                start = _date.fromisoformat(start)
            except ValueError:
                pass
        if not isinstance(start, _date) or isinstance(start, datetime):
            problems.append(f"{k}.from: {start!r} is not allowed -- expected a date YYYY-MM-DD")
            return ()
        if last is not None and start <= last:
            problems.append(f"{k}.from: {start.isoformat()!r} is not allowed -- periods must be in ascending date "
                            f"order: after {key}[{i - 1}].from ({last.isoformat()})")
        last = start
        for name in RATE_KEYS:
            if name not in period:
                continue
            v = period[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                problems.append(f"{k}.{name}: {v!r} is not allowed -- expected a number")
            elif v < 0:
                problems.append(f"{k}.{name}: {v!r} is not allowed -- rates must not be negative")
            elif name.endswith("_pct") and v > 100:
                problems.append(f"{k}.{name}: {v!r} is not allowed -- a percentage must be at most 100")
            else:
                current[name] = v
        missing = [n for n in RATE_KEYS if n not in current]
        if missing:
            if i == 0:
                problems.append(f"{k}: missing {', '.join(missing)} -- the first period must give every rate")
            return ()
        out.append(rates_from_mapping(start, current))
    return tuple(out)




def _cross_checks(s: dict[str, Any]) -> list[str]:
    p: list[str] = []
    dash: DashboardConfig = s["dashboard"]
    if not is_loopback(dash.host):
        p.append(f"dashboard.host: {dash.host!r} is not allowed -- the dashboard listens on loopback only "
                 "(127.0.0.1, ::1 or localhost)")
    if dash.port > 65535:
        p.append(f"dashboard.port: {dash.port!r} is not allowed -- use 0 (off) or a port from 1 to 65535")
    risk: RiskConfig = s["risk"]
    for key, sign in (("symbol_max_loss_pct", -1), ("global_max_loss_pct", -1),
                      ("symbol_max_profit_pct", 1), ("global_max_profit_pct", 1)):
        v = getattr(risk, key)
        if v is not None and (v >= 0 if sign < 0 else v <= 0):
            want = "negative (a loss, e.g. -2.0)" if sign < 0 else "positive (a gain, e.g. 4.0)"
            p.append(f"risk.{key}: {v!r} is not allowed -- caps have a sign: must be {want}")
    if risk.max_allocation > risk.capital * risk.margin_multiplier:
        p.append(f"risk.max_allocation: {risk.max_allocation!r} is not allowed -- must not exceed "
                 f"capital x margin_multiplier ({risk.capital * risk.margin_multiplier:g})")
    ses: SessionConfig = s["session"]
    order = [("pre_open", ses.pre_open), ("open", ses.open), ("entry_cutoff", ses.entry_cutoff),
             ("square_off", ses.square_off), ("close", ses.close)]
    for (an, a), (bn, b) in zip(order, order[1:], strict=False):
        if not a <= b:
            p.append(f"session.{bn}: {b.strftime('%H:%M')!r} is not allowed -- must not be earlier than "
                     f"session.{an} ({a.strftime('%H:%M')})")
    rf = s["backtest"].risk_free_rate
    if not 0 <= rf <= MAX_RISK_FREE_RATE:
        p.append(f"backtest.risk_free_rate: {rf!r} is not allowed -- a yearly rate as a fraction from 0 to "
                 f"{MAX_RISK_FREE_RATE:g} (0.065 means 6.5%)")
    speed = s["replay"].speed
    if speed != "max":
        try:
            if not math.isfinite(float(speed)) or float(speed) <= 0:
                raise ValueError
        except ValueError:
            p.append(f"replay.speed: {speed!r} is not allowed -- expected max or a positive multiple of real time")
    date = s["replay"].date
    if date is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", str(date)):
        p.append(f"replay.date: {date!r} is not allowed -- expected YYYY-MM-DD or null")
    elif date is not None:
        try:
            problem = uncovered_day(s["costs"], _date.fromisoformat(str(date)))
        except ValueError:
            problem = "not a calendar date"
        if problem:
            p.append(f"replay.date: {date!r} is not allowed -- {problem}")
    return p


def uncovered_day(costs: CostsConfig, day: _date) -> str | None:
    """Why `day` cannot be traded with these charge rates, or None when it can."""
    if not costs.rates or costs.table.covers(day):
        return None
    return (f"costs.rates starts {costs.rates[0].start.isoformat()}, so {day.isoformat()} has no charge rates; "
            f"add a period from on or before that day")


def load_config(path: Path | str | None = None) -> Config:
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the config file ({e.strerror or e})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{path.name}: not valid YAML{where} ({getattr(e, 'problem', e)})"]) from None
    return parse_config(raw, path)
