"""The live view: what the running daemon holds in its Manager's shared state for readers outside the trading
thread (`status` now, the operator dashboard later): positions, P&L, trading state, worker and feed health.

The Manager listens on loopback only, at a port the driver records in its `daemon` row, and accepts only
connections that know its authkey. The authkey is a secret: it is never logged, and it lives in a file only
the user can read (0600) next to the database, named after the daemon's pid, removed when the daemon exits.
The trading thread builds the view at most every LIVE_EVERY_S from the RiskManager's books (no Manager round
trip on that thread); the supervisor's thread writes it to the Manager in one round trip with the other
changes.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from decimal import Decimal
from multiprocessing.managers import DictProxy, SyncManager
from pathlib import Path
from typing import Any

from core.net import is_loopback

log = logging.getLogger(__name__)

LIVE_EVERY_S = 0.25  # how often the trading thread refreshes positions and P&L in the shared state
READ_TIMEOUT_S = 3.0  # a reader gives up on a Manager that does not answer (stopped, overloaded)
LIVE_KEYS = ("positions", "pnl", "trading_state", "state_reason", "health", "feed_time", "signals", "live_at")

_view: dict[str, Any] = {}  # in the Manager's process: the shared state itself


def _the_view() -> dict[str, Any]:
    """The Manager's one shared dict: every client (the driver, `status`) gets a proxy to this same object."""
    return _view


class LiveManager(SyncManager):
    """A SyncManager whose shared state a second client can find by name (`live_view`), not only the driver."""


LiveManager.register("live_view", callable=_the_view, proxytype=DictProxy)


def key_dir(db_url: str | None) -> Path:
    """Where the authkey file goes: beside a SQLite database, else in the project's data folder."""
    from sqlalchemy.engine import make_url

    from db import DEFAULT_SQLITE_PATH

    if db_url:
        try:
            url = make_url(db_url)
        except Exception:  # noqa: BLE001 - a URL the database layer refuses is reported there
            return DEFAULT_SQLITE_PATH.parent
        if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
            return Path(url.database).resolve().parent
    return DEFAULT_SQLITE_PATH.parent


def write_key(folder: Path) -> tuple[bytes, Path]:
    """A fresh random authkey in a file only this user can read; (key, path)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"live_view-{os.getpid()}.key"
    key = secrets.token_bytes(32)
    try:
        path.unlink()  # a leftover of an earlier process with this pid
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.hex().encode())
    return key, path


def start_manager(ctx: Any, db_url: str | None, initializer: Any = None) -> tuple[LiveManager, dict[str, Any]]:
    """Start the Manager on loopback with a fresh authkey; returns it and where a reader finds it (no secret)."""
    key, path = write_key(key_dir(db_url))
    manager = LiveManager(address=("127.0.0.1", 0), authkey=key, ctx=ctx)
    try:
        manager.start(initializer)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    host, port = manager.address
    return manager, {"address": [host, port], "key_file": str(path)}


def remove_key(where: dict[str, Any] | None) -> None:
    if where:
        Path(where["key_file"]).unlink(missing_ok=True)


def trading_view(rm: Any, feed_time: float, signals: int) -> dict[str, Any]:
    """Positions, P&L and trading state from the RiskManager's books, as plain values (trading thread)."""
    positions = []
    unrealized, unpriced = Decimal(0), 0
    cap_prices = getattr(rm, "cap_prices", None)  # the dashboard's distance to each symbol cap
    for t in rm.active_trades.values():
        loss_at, profit_at = cap_prices(t) if cap_prices is not None else (None, None)
        price = rm.price_tracker.get(t.symbol)
        upnl = None if price is None else t.pnl(price, t.remaining)
        if upnl is None:
            unpriced += 1
        else:
            unrealized += upnl
        positions.append({"trade_id": t.trade_id, "symbol": t.symbol, "strategy": t.strategy,
                          "side": t.side.value, "quantity": t.remaining, "entry_quantity": t.quantity,
                          "entry_price": t.entry_price, "allocated": t.allocated, "stop_loss": t.stop_loss,
                          "take_profit_price": t.take_profit_price, "entry_time": t.entry_time,
                          "last_price": price, "unrealized_pnl": upnl, "loss_cap_price": loss_at,
                          "profit_cap_price": profit_at})
    return {"positions": positions,
            "pnl": {"capital": rm.capital, "starting_capital": rm.start_capital,
                    "realized": rm.capital - rm.start_capital,
                    "unrealized": None if positions and unpriced == len(positions) else unrealized,
                    "unpriced_positions": unpriced, "equity": rm.capital + unrealized,
                    "high_water": getattr(rm, "high_water", None)},
            "trading_state": rm.state.value, "state_reason": rm.state_reason, "feed_time": feed_time,
            "signals": signals, "live_at": time.time()}


class LiveViewError(Exception):
    """The live view cannot be read; the message is one line for the operator."""


def connect_live_view(where: dict[str, Any], timeout_s: float = READ_TIMEOUT_S) -> DictProxy:
    """A proxy to the running daemon's shared state; its calls give up after timeout_s (the socket keeps it)."""
    try:
        host, port = where["address"]
        key = bytes.fromhex(Path(where["key_file"]).read_text().strip())
    except (KeyError, TypeError, ValueError) as e:
        raise LiveViewError(f"the daemon's record has no usable live view address ({e})") from None
    except OSError as e:
        raise LiveViewError(f"cannot read the live view's key: {e.strerror or e}") from None
    if not is_loopback(host):
        raise LiveViewError(f"the live view address {host} is not loopback; not connecting")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # the Manager's client sockets are made inside multiprocessing
    try:
        m = LiveManager(address=(host, int(port)), authkey=key)
        m.connect()
        view: DictProxy = m.live_view()  # type: ignore[attr-defined]
        view.keys()  # this thread's connection, made now: under the timeout
        return view
    except Exception as e:  # noqa: BLE001 - refused, timed out, wrong key: one line, then the database view
        raise LiveViewError(f"the daemon's shared state did not answer ({type(e).__name__}: {e})") from None
    finally:
        socket.setdefaulttimeout(old)


def read_live_view(where: dict[str, Any], timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
    """One consistent copy of the running daemon's shared state (one round trip to its Manager)."""
    view = connect_live_view(where, timeout_s)
    try:
        return dict(view.copy())
    except Exception as e:  # noqa: BLE001 - as above
        raise LiveViewError(f"the daemon's shared state did not answer ({type(e).__name__}: {e})") from None
