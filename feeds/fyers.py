"""The live feed (LIVE_DATA=true): fyers_apiv3's FyersDataSocket wrapped so its traps cannot bite.

What the SDK does not do for us (fyers-datasocket.md §1, §4.2), and what this module does instead:
- on_connect fires 2 s after connect() even if the connection failed, so "connected" means the server's
  {'type':'cn','s':'ok'} message arrived; start() waits for it, and for the subscribe ack, with deadlines.
- it never resubscribes after its own reconnect, so every new authentication is followed by one
  subscribe call with all symbols (one call: unsubscribe only knows the latest call's symbols).
- a slow on_message stalls socket reads, so ticks go onto a SimpleQueue and a consumer thread hands
  them on in batches.
- a silent connection is never detected, so a watchdog forces a reconnect when no tick has arrived for
  `stale_after_s` while the market is open.
- close_connection() can block ~10 s, so stop() runs it in a daemon thread with a time limit.
- the token's expiry is only noticed as an on_error, so it is checked here before connecting.
The access token is a secret: it is never logged or put in an exception message.

FeedClient holds the socket-independent part, so the same code can drive a SimulatedWebSocket.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.clock import fmt_ist
from core.config import PROJECT_ROOT
from core.types import FyersTick

log = logging.getLogger(__name__)
TICK_TYPES = frozenset({"sf", "if", "dp"})
_STOP = object()


class FeedError(Exception):
    """The feed cannot start or run; the message says why and what to do. Never contains the token."""


# ---------------------------------------------------------------- the access token

def token_expiry(access_token: str) -> int:
    """The `exp` claim (epoch seconds) of a Fyers access token (a JWT; no signature check, as the SDK)."""
    token = access_token.split(":", 1)[1] if ":" in access_token else access_token
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise FeedError("FYERS_ACCESS_TOKEN is not a Fyers access token (expected a JWT: three parts "
                        "separated by dots) -- paste the access_token from today's login")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload["exp"]
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise TypeError
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise FeedError("FYERS_ACCESS_TOKEN is not a Fyers access token (its payload has no valid exp) "
                        "-- paste the access_token from today's login") from None
    if "hsm_key" not in payload:
        raise FeedError("FYERS_ACCESS_TOKEN has no hsm_key: it is not a Fyers API v3 access token")
    return int(exp)


def check_token(access_token: str, min_valid_s: float = 1800.0, now: float | None = None) -> int:
    """Refuse a token that has expired or expires within `min_valid_s`; returns its expiry."""
    exp = token_expiry(access_token)
    now = time.time() if now is None else now
    when = fmt_ist(exp)
    if exp <= now:
        raise FeedError(f"FYERS_ACCESS_TOKEN expired at {when} -- log in to Fyers again and put today's "
                        "access token in .env")
    if exp - now < min_valid_s:
        raise FeedError(f"FYERS_ACCESS_TOKEN expires at {when}, in {(exp - now) / 60:.0f} minutes (less than "
                        f"the {min_valid_s / 60:.0f} minutes required) -- log in to Fyers again for a fresh token")
    return exp


def socket_token(app_id: str, access_token: str) -> str:
    """'APPID:JWT' as the data socket expects; accepts a token pasted with or without the prefix."""
    app_id = app_id.strip()
    if not app_id or ":" in app_id:
        raise FeedError("FYERS_APP_ID must be the app id (e.g. XXXXXXXXXX-100), without a colon")
    token = access_token.strip()
    if ":" in token:
        prefix, token = token.split(":", 1)
        if prefix != app_id:
            raise FeedError("FYERS_ACCESS_TOKEN starts with an app id that is not FYERS_APP_ID -- "
                            "put the bare access token in .env")
    return f"{app_id}:{token}"


# ---------------------------------------------------------------- the socket-independent client

class FeedClient:
    """Connect, subscribe once per authentication, hand ticks on from a consumer thread, watch for
    silence, close within a time limit. `make_socket(on_connect, on_message, on_error, on_close)`
    returns an object with the FyersDataSocket methods connect/subscribe/close_connection."""

    name = "feed"
    subscribe_on_auth = False  # True: the watchdog thread subscribes as soon as a connection authenticates

    def __init__(self, make_socket: Callable[..., Any], tickers: Sequence[str], *,
                 on_tick: Callable[[FyersTick], Any] | None = None,
                 on_ticks: Callable[[list[FyersTick]], Any] | None = None,
                 stale_after_s: float | None = 60.0, in_market_hours: Callable[[], bool] = lambda: True,
                 connect_timeout_s: float = 15.0, close_timeout_s: float = 12.0, max_batch: int = 512,
                 secrets: Sequence[str] = (), on_idle: Callable[[], Any] | None = None):
        if (on_tick is None) == (on_ticks is None):
            raise ValueError("give exactly one of on_tick (one tick per call) or on_ticks (a list per call)")
        self.tickers = list(dict.fromkeys(tickers))
        if not self.tickers:
            raise ValueError("no symbols to subscribe")
        self._make_socket = make_socket
        self._on_tick, self._on_ticks = on_tick, on_ticks
        self._on_idle = on_idle  # called when the ticks received so far are all handed on: a batcher flushes
        self.stale_after_s = stale_after_s
        self.in_market_hours = in_market_hours
        self.connect_timeout_s = connect_timeout_s
        self.close_timeout_s = close_timeout_s
        self.max_batch = max_batch
        self._secrets = [s for s in secrets if s]
        self.socket: Any = None   # the FyersDataSocket (or SimulatedWebSocket) once started
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped = False
        self._started = False
        self._cond = threading.Condition()
        self._sub_lock = threading.Lock()
        self._in_on_connect = False
        self._sub_busy = False
        self._sub_stuck = False
        self._sub_started = 0.0
        # progress, written by the socket thread(s); read by the supervisor and stats()
        self.received = 0          # ticks taken from the socket
        self.delivered = 0         # ticks handed to on_tick/on_ticks
        self.last_time = 0         # the latest exch_feed_time handed on (epoch seconds)
        self.callback_errors = 0
        self.auth_count = 0        # {'type':'cn','s':'ok'} seen: connections that authenticated
        self._auth_at = 0.0
        self.subscribed_gen = 0    # the auth_count our last subscribe call was for
        self.sub_acks = 0
        self._acked_gen = 0        # the auth_count when the latest subscription ack arrived
        self.subscribe_calls = 0
        self.restarts = 0          # watchdog interventions
        self.errors = 0
        self.last_error: str | None = None
        self.invalid_symbols: list[str] = []
        self._last_rx_seen = -1
        self._last_rx_change = time.monotonic()
        self._last_restart = 0.0
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect and subscribe; returns once the subscription is acknowledged, else raises FeedError."""
        if self._started:
            raise FeedError(f"{self.name} already started")
        self._started = True
        self.socket = self._make_socket(on_connect=self._on_connect, on_message=self._on_message,
                                      on_error=self._on_error, on_close=self._on_close)
        self._spawn(self._consume, f"{self.name}-consumer")
        self._spawn(self._supervise, f"{self.name}-watchdog")
        log.info("%s: connecting (%d symbols)", self.name, len(self.tickers))
        self._spawn(self.socket.connect, f"{self.name}-connect")
        deadline = time.monotonic() + self.connect_timeout_s + 2.0  # the SDK's connect() sleeps 2 s first
        if not self._wait(lambda: self.auth_count > 0, deadline):
            why = f" (last error: {self.last_error})" if self.last_error else ""
            self.stop()
            raise FeedError(f"{self.name}: the data socket did not authenticate within "
                            f"{self.connect_timeout_s + 2.0:.0f}s{why} -- check the network, FYERS_APP_ID "
                            "and today's FYERS_ACCESS_TOKEN")
        if not self._wait(lambda: self.sub_acks > 0, time.monotonic() + self.connect_timeout_s + 5.0):
            self.stop()
            raise FeedError(f"{self.name}: the subscription was not acknowledged within "
                            f"{self.connect_timeout_s + 5.0:.0f}s{self._sub_hint()}")
        log.info("%s: receiving ticks for %d symbols", self.name, len(self.tickers))

    def _sub_hint(self) -> str:
        return ""

    def stop(self) -> None:
        """Close the socket (bounded) and deliver the ticks already received (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        with self._cond:
            self._cond.notify_all()
        if self.socket is not None:
            closer = threading.Thread(target=self._close_socket, name=f"{self.name}-close", daemon=True)
            closer.start()
            closer.join(self.close_timeout_s)
            if closer.is_alive():
                log.warning("%s: the socket did not close within %.0fs; leaving it to finish in the background",
                            self.name, self.close_timeout_s)
        self._q.put(_STOP)
        # every thread this client started, within one deadline: a subscribe the SDK's symbol lookup hangs (an
        # HTTP call without a timeout) is left to finish in the background; it does nothing once stopped
        me = threading.current_thread()
        deadline = time.monotonic() + self.close_timeout_s
        for t in self._threads:
            if t is not me:
                t.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in self._threads if t.is_alive() and t is not me]
        if left:
            log.warning("%s: still running after stop: %s", self.name, ", ".join(left))
        log.info("%s: stopped after %d ticks", self.name, self.delivered)

    def close(self) -> None:
        """Same as stop()."""
        self.stop()

    @property
    def finished(self) -> bool:
        """A replay's source is exhausted and every tick was handed on (a live feed never finishes)."""
        return bool(getattr(self.socket, "finished", False)) and self.delivered >= self.received

    def _close_socket(self) -> None:
        try:
            self.socket.close_connection()
        except Exception as e:  # noqa: BLE001 - closing must not raise into stop()
            log.warning("%s: error while closing the socket: %s", self.name, self._clean(e))

    def stats(self) -> dict[str, Any]:
        with self._cond:
            age = time.monotonic() - self._last_rx_change if self.received else None
        return {"received": self.received, "delivered": self.delivered, "queued": self._q.qsize(),
                "connections": self.auth_count, "reconnects": max(0, self.auth_count - 1),
                "subscribe_calls": self.subscribe_calls, "subscribe_acks": self.sub_acks,
                "watchdog_restarts": self.restarts, "errors": self.errors, "last_error": self.last_error,
                "callback_errors": self.callback_errors, "invalid_symbols": list(self.invalid_symbols),
                "silent_s": age, "last_time": self.last_time, "stopped": self._stopped}

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until every tick received so far has been handed to the tick handler."""
        deadline = time.monotonic() + timeout
        while self.delivered < self.received:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [*(old for old in self._threads if old.is_alive()), t]  # stop() joins these
        t.start()

    def _wait(self, cond: Callable[[], bool], deadline: float) -> bool:
        with self._cond:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    return cond()
                self._cond.wait(min(left, 0.5))
            return True

    # ---------------------------------------------------------------- socket callbacks

    def _on_message(self, msg: dict) -> None:
        if msg.get("type") in TICK_TYPES and "s" not in msg:
            if self._stopped:
                return
            self.received += 1
            self._q.put(msg)
            return
        self._on_control(msg)

    def _on_control(self, msg: dict) -> None:
        kind, ok = msg.get("type"), msg.get("s") == "ok"
        if kind == "cn" and ok:
            if self._stopped:
                self._zombie()
                return
            with self._cond:
                self.auth_count += 1
                self._auth_at = self._last_rx_change = time.monotonic()  # a new connection: silence restarts
                self._cond.notify_all()
            log.info("%s: authenticated (connection %d)", self.name, self.auth_count)
        elif kind == "sub" and ok:
            with self._cond:
                self.sub_acks += 1
                self._acked_gen = self.auth_count
                self._last_rx_change = time.monotonic()
                self._cond.notify_all()
            log.info("%s: subscription acknowledged (%d symbols)", self.name, len(self.tickers))
        elif "s" in msg and not ok:
            self._on_error(msg)
        else:
            log.debug("%s: %s", self.name, msg)

    def _on_connect(self) -> None:
        """The socket says it connected (the SDK says so even when it did not): wait for the real
        authentication of this connection, then subscribe on this thread (the replay thread for a
        simulated socket, so a replay stays deterministic)."""
        if self._stopped:
            return
        self._in_on_connect = True
        try:
            if (self.auth_count and self.auth_count == self.subscribed_gen
                    and time.monotonic() - self._auth_at < self.connect_timeout_s + 2.0):
                return  # this connection's authentication was already answered with a subscribe
            deadline = time.monotonic() + self.connect_timeout_s
            if not self._wait(lambda: self.auth_count > self.subscribed_gen, deadline):
                if not self._stopped:
                    log.warning("%s: no authentication within %.0fs of connecting", self.name,
                                self.connect_timeout_s)
                return
            self._subscribe()
        finally:
            self._in_on_connect = False

    def _subscribe_in_background(self) -> None:
        try:
            self._subscribe()
        except Exception:  # noqa: BLE001
            log.exception("%s: subscribe failed", self.name)
        finally:
            self._sub_busy = False
            self._sub_stuck = False

    def _subscribe(self) -> None:
        if not self._sub_lock.acquire(timeout=self.connect_timeout_s):
            return
        try:
            gen = self.auth_count
            if gen <= self.subscribed_gen or self._stopped:
                return
            self.subscribed_gen = gen
            self.subscribe_calls += 1
            self._sub_started = time.monotonic()
            log.info("%s: subscribing %d symbols (connection %d)", self.name, len(self.tickers), gen)
            self.socket.subscribe(symbols=list(self.tickers), data_type="SymbolUpdate")
        finally:
            self._sub_lock.release()

    def _on_error(self, err: Any) -> None:
        self.errors += 1
        if isinstance(err, dict):
            text = f"{err.get('code')} {err.get('message')}"
            if err.get("invalid_symbols"):
                self.invalid_symbols = list(err["invalid_symbols"])
                log.error("%s: Fyers rejected %d symbol(s): %s", self.name, len(self.invalid_symbols),
                          ", ".join(map(str, self.invalid_symbols[:20])))
            elif err.get("type") == "cn" and err.get("code") == -99:
                log.error("%s: Fyers says the access token has expired -- log in again for today's token",
                          self.name)
            else:
                log.warning("%s: error from the data socket: %s", self.name, self._clean(text))
        elif isinstance(err, BaseException):
            text = f"{type(err).__name__}: {err}"
            log.warning("%s: connection problem: %s", self.name, self._clean(text))
        else:
            text = str(err)
            log.warning("%s: error from the data socket: %s", self.name, self._clean(text))
        self.last_error = self._clean(text)[:300]

    def _on_close(self, msg: Any) -> None:
        log.info("%s: connection closed", self.name)

    def _zombie(self) -> None:
        """A reconnect the SDK started before stop() finished: close it too."""
        log.info("%s: closing a connection that opened after stop()", self.name)
        threading.Thread(target=self._close_socket, name=f"{self.name}-close-late", daemon=True).start()

    def _clean(self, e: Any) -> str:
        text = str(e)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    # ---------------------------------------------------------------- consumer thread

    def _consume(self) -> None:
        q, max_batch = self._q, self.max_batch
        get, get_nowait, Empty = q.get, q.get_nowait, queue.Empty
        last_err_log = 0.0
        stop = False
        while not stop:
            item = get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < max_batch:
                try:
                    item = get_nowait()
                except Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                if self._on_ticks is not None:
                    self._on_ticks(batch)
                else:
                    for t in batch:
                        self._on_tick(t)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the feed
                self.callback_errors += 1
                now = time.monotonic()
                if now - last_err_log > 60.0:
                    last_err_log = now
                    log.exception("%s: the tick handler failed (%d failures so far); the feed goes on",
                                  self.name, self.callback_errors)
            self.delivered += len(batch)
            ts = batch[-1].get("exch_feed_time")
            if ts is not None and ts > self.last_time:
                self.last_time = ts
            if self._on_idle is not None and len(batch) < max_batch and q.empty():
                try:
                    self._on_idle()
                except Exception:  # noqa: BLE001 - as for the tick handler
                    self.callback_errors += 1

    # ---------------------------------------------------------------- watchdog

    def _supervise(self) -> None:
        period = 1.0 if self.stale_after_s is None else max(0.05, min(1.0, self.stale_after_s / 4))
        while not self._stopped:
            with self._cond:
                self._cond.wait(period)
            if self._stopped:
                return
            try:
                self._check()
            except Exception:  # noqa: BLE001 - the watchdog must survive anything
                log.exception("%s: watchdog check failed", self.name)

    def _check(self) -> None:
        now = time.monotonic()
        if self.auth_count > self.subscribed_gen and not self._sub_busy:
            # authenticated, not yet subscribed: now (live SDK: on_connect only fires 2 s later), or as a
            # fallback when on_connect never subscribed (it did not fire, or gave up waiting)
            late = not self._in_on_connect and now - self._auth_at > self.connect_timeout_s
            if self.subscribe_on_auth or late:
                if late:
                    log.warning("%s: authenticated %.0fs ago but not subscribed; subscribing now", self.name,
                                now - self._auth_at)
                # on its own thread: the SDK's symbol lookup is an HTTP call without a timeout, and the
                # watchdog must keep running if it hangs
                self._sub_busy = True
                self._spawn(self._subscribe_in_background, f"{self.name}-subscribe")
        elif self._sub_busy and now - self._sub_started > 4 * self.connect_timeout_s and not self._sub_stuck:
            self._sub_stuck = True
            log.error("%s: the subscribe call has not returned for %.0fs (the SDK's symbol lookup has no "
                      "timeout); no ticks until it does", self.name, now - self._sub_started)
        if self.sub_acks == 0:
            return  # the watchdog starts once the first subscription is confirmed
        rx = self.received
        with self._cond:
            if rx != self._last_rx_seen:
                self._last_rx_seen, self._last_rx_change = rx, now
                return
            silent = now - self._last_rx_change
        if self.stale_after_s is None or silent < self.stale_after_s:
            return
        try:
            market_open = bool(self.in_market_hours())
        except Exception:  # noqa: BLE001
            log.exception("%s: in_market_hours() failed; assuming the market is open", self.name)
            market_open = True
        if not market_open:
            with self._cond:
                self._last_rx_change = now  # silence outside market hours is normal; restart the count
            return
        if now - self._last_restart < self.stale_after_s:
            return
        if self.auth_count > self._acked_gen and now - self._auth_at < self.connect_timeout_s + 5.0:
            return  # this connection's subscription is not acknowledged yet (as long as start() would wait)
        action = self._force_reconnect()
        if action is None:
            return
        self.restarts += 1
        self._last_restart = now
        with self._cond:
            self._last_rx_change = now
        log.warning("%s: no tick for %.0fs during market hours: %s", self.name, silent, action)

    def _force_reconnect(self) -> str | None:
        """Make the socket reconnect; returns what was done, or None if a reconnect is under way."""
        drop = getattr(self.socket, "disconnect", None)
        if drop is None:
            return None
        drop()
        return "dropped the connection to reconnect"


# ---------------------------------------------------------------- the Fyers SDK socket

class FyersFeed(FeedClient):
    """FeedClient on fyers_apiv3's FyersDataSocket. One per process: the SDK class is a singleton."""

    name = "fyers-feed"
    subscribe_on_auth = True
    _running: FyersFeed | None = None
    _running_lock = threading.Lock()

    def __init__(self, app_id: str, access_token: str, tickers: Sequence[str],
                 on_tick: Callable[[FyersTick], Any] | None = None, log_dir: Path | str | None = None, *,
                 on_ticks: Callable[[list[FyersTick]], Any] | None = None, stale_after_s: float | None = 60.0,
                 in_market_hours: Callable[[], bool] = lambda: True, connect_timeout_s: float = 15.0,
                 close_timeout_s: float = 12.0, min_token_validity_s: float = 1800.0,
                 reconnect_retry: int = 50, ws_url: str | None = None, max_batch: int = 512,
                 on_idle: Callable[[], Any] | None = None):
        self._token = socket_token(app_id, access_token)
        self.token_expires_at = check_token(self._token, min_token_validity_s)
        self.log_dir = Path(log_dir) if log_dir is not None else PROJECT_ROOT / "logs"  # SDK's own log goes here
        self.reconnect_retry = reconnect_retry
        self.ws_url = ws_url
        self._expired_logged = False
        self._ws: Any = None        # the SDK's websocket as the watchdog last saw it, and since when
        self._ws_since = 0.0
        bare = self._token.split(":", 1)[1]
        super().__init__(self._new_sdk_socket, tickers, on_tick=on_tick, on_ticks=on_ticks,
                         stale_after_s=stale_after_s, in_market_hours=in_market_hours,
                         connect_timeout_s=connect_timeout_s, close_timeout_s=close_timeout_s,
                         max_batch=max_batch, secrets=(self._token, bare, access_token), on_idle=on_idle)

    def __repr__(self) -> str:
        return f"FyersFeed(symbols={len(self.tickers)}, token=***)"

    def start(self) -> None:
        with FyersFeed._running_lock:
            if FyersFeed._running is not None and not FyersFeed._running._stopped:  # noqa: SLF001 - its own class
                raise FeedError("a FyersFeed is already running in this process (the Fyers SDK allows one "
                                "data socket per process)")
            FyersFeed._running = self
        try:
            super().start()
        except BaseException:
            with FyersFeed._running_lock:
                if FyersFeed._running is self:
                    FyersFeed._running = None
            raise

    def stop(self) -> None:
        super().stop()
        with FyersFeed._running_lock:
            if FyersFeed._running is self:
                FyersFeed._running = None

    def _new_sdk_socket(self, *, on_connect: Callable, on_message: Callable, on_error: Callable,
                        on_close: Callable) -> Any:
        from fyers_apiv3.FyersWebsocket.data_ws import FyersDataSocket

        self.log_dir.mkdir(parents=True, exist_ok=True)
        # write_to_file=True: with callbacks set it only routes the SDK's reconnect chatter to its log
        # file instead of stdout, and makes its websocket threads daemons so shutdown cannot hang on them.
        sock = FyersDataSocket(access_token=self._token, write_to_file=True, log_path=str(self.log_dir),
                               litemode=False, reconnect=True, reconnect_retry=self.reconnect_retry,
                               on_connect=on_connect, on_message=on_message, on_error=on_error,
                               on_close=on_close)
        if self.ws_url:
            sock._FyersDataSocket__url = self.ws_url  # noqa: SLF001 - the SDK has no setter; tests and local fakes
        return sock

    def _sub_hint(self) -> str:
        return (f" -- the SDK drops a subscribe silently when its symbol-token REST call fails; see "
                f"{self.log_dir / 'fyersDataSocket.log'}")

    def _check(self) -> None:
        if time.time() >= self.token_expires_at:
            if not self._expired_logged:
                self._expired_logged = True
                log.error("%s: the access token expired at %s; the feed cannot reconnect until a new token "
                          "is set and the daemon restarted", self.name, fmt_ist(self.token_expires_at))
            return
        ws = getattr(self.socket, "_FyersDataSocket__ws_object", None)
        if ws is not self._ws:
            self._ws, self._ws_since = ws, time.monotonic()
        super()._check()

    def _force_reconnect(self) -> str | None:
        sock = self.socket
        ws = getattr(sock, "_FyersDataSocket__ws_object", None)
        if ws is None:
            attempt = getattr(sock, "ws_thread", None)
            if attempt is not None and (attempt.is_alive() or attempt.ident is None):
                # a connection attempt (or the SDK's back-off before one) is under way; a thread not started yet
                # (ident None) is the SDK's reconnect between creating its thread and starting it, not a stop
                return None
            # the SDK gave up reconnecting: start a fresh connection
            self._spawn(sock.connect, f"{self.name}-connect")
            return "connecting again (the SDK had stopped reconnecting)"
        inner = getattr(ws, "sock", None)
        raw = getattr(inner, "sock", None)
        if inner is None or raw is None or not getattr(inner, "connected", False):
            return None  # the SDK is between attempts of its own reconnect
        if time.monotonic() - self._ws_since < (self.stale_after_s or 0.0):
            # opened lately and not authenticated yet (authentication restarts the silence count): the silence
            # measured so far was the previous connection's. Dropping this one would cost another back-off.
            return None
        # Shut the TCP socket down (not ws.close() from this thread: that does not wake the SDK's reader,
        # blocked in select for up to 10 s). The reader sees the end of the stream at once and runs the
        # SDK's own reconnect, and our resubscribe follows the new authentication.
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError as e:
            return f"could not drop the silent connection ({e}); waiting for the SDK"
        return "dropped the silent connection; the SDK reconnects"


__all__ = ["FeedClient", "FyersFeed", "FeedError", "token_expiry", "check_token", "socket_token", "TICK_TYPES"]
