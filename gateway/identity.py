"""Which server HOST_SERVER is: the paper broker or a real OpenAlgo, asked once before anything starts.

A real OpenAlgo answers the authenticated /api/v1/ping with the broker it trades through, the name of one
of its broker plugins (Python packages, so never with a hyphen). The paper broker answers with
PAPER_BROKER_NAME, which has one, and says `paper_broker: true`, a key no OpenAlgo sends. Mode live against
the paper broker would "trade" fills of ticks nobody sent to a market; mode paper against a real OpenAlgo
would send real orders. Both are refused at start-up and by --check.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from core.enums import ExecutionMode
from core.net import is_loopback_url
from gateway.results import Ok, Rejected, Unavailable

log = logging.getLogger(__name__)

PAPER_BROKER_NAME = "paper-broker"


class ServerKind(str, Enum):
    PAPER = "paper broker"
    OPENALGO = "OpenAlgo"
    UNREACHABLE = "not answering"
    KEY_REFUSED = "refuses the key"
    UNKNOWN = "not identified"


@dataclass(frozen=True)
class ServerIdentity:
    kind: ServerKind
    detail: str  # the broker's name for OPENALGO, else what came back


def identify_server(host: str, api_key: str, timeout_s: float = 3.0) -> ServerIdentity:
    """One ping; never raises."""
    from gateway.openalgo import OpenAlgoGateway

    gw = OpenAlgoGateway(host, api_key, timeout_s=timeout_s, retry_429_for_s=1.0, rate_wait_max_s=1.0)
    try:
        res = gw.ping()
    finally:
        gw.close()
    if isinstance(res, Ok):
        broker = str(res.value.get("broker") or "")
        if res.value.get("paper_broker") is True or broker == PAPER_BROKER_NAME:
            return ServerIdentity(ServerKind.PAPER, broker)
        if broker:
            return ServerIdentity(ServerKind.OPENALGO, broker)
        return ServerIdentity(ServerKind.UNKNOWN, "ping answered without a broker name")
    if isinstance(res, Unavailable):
        return ServerIdentity(ServerKind.UNREACHABLE, res.reason)
    if isinstance(res, Rejected) and res.http_status in (401, 403):
        return ServerIdentity(ServerKind.KEY_REFUSED, f"HTTP {res.http_status}")
    status = getattr(res, "http_status", None)
    return ServerIdentity(ServerKind.UNKNOWN, f"ping answered HTTP {status}" if status else type(res).__name__)


def server_problems(mode: ExecutionMode, host: str, api_key: str | None,
                    ident: ServerIdentity | None = None) -> list[str]:
    """Problems "KEY: value -- why" with the server at `host` for `mode` (asks it unless `ident` is given)."""
    if mode is ExecutionMode.SIGNALS_ONLY or not api_key:
        return []
    ident = ident or identify_server(host, api_key)
    kind = ident.kind
    if mode is ExecutionMode.LIVE:
        if kind is ServerKind.PAPER:
            return [f"HOST_SERVER: {host!r} is not allowed with mode live -- it is the paper broker; mode live sends "
                    "real orders through your OpenAlgo server (point HOST_SERVER at it), or use mode paper"]
        if kind is ServerKind.UNREACHABLE:
            return [f"HOST_SERVER: {host!r} is not answering ({ident.detail}) -- mode live needs your OpenAlgo "
                    "server running, to confirm it is not the paper broker before anything starts"]
        if kind is ServerKind.UNKNOWN:
            return [f"HOST_SERVER: {host!r} did not answer OpenAlgo's /api/v1/ping ({ident.detail}) -- mode live "
                    "needs an OpenAlgo server that names the broker it trades through (update OpenAlgo)"]
    if mode is ExecutionMode.PAPER and kind is ServerKind.OPENALGO:
        return [f"HOST_SERVER: {host!r} is not allowed with mode paper -- it is a real OpenAlgo server (broker "
                f"{ident.detail}) and would get real orders; point HOST_SERVER at the paper broker "
                "(e.g. http://127.0.0.1:5000, started by the daemon if none runs there), or use mode live"]
    if mode is ExecutionMode.PAPER and kind is ServerKind.UNREACHABLE and not is_loopback_url(host):
        return [f"HOST_SERVER: {host!r} is not answering ({ident.detail}) -- mode paper starts the paper broker "
                "only on loopback: use http://127.0.0.1:PORT, or start the broker at that address first"]
    if kind is ServerKind.KEY_REFUSED:
        return [key_refused_problem(mode, host, ident.detail)]
    return []


def paper_broker_pid(host: str, timeout_s: float = 2.0) -> int | None:
    """The pid of the paper broker answering at `host` (its keyless health route), or None if it is not one."""
    from paper.client import PaperBrokerAdmin, PaperBrokerError

    try:
        health = PaperBrokerAdmin(host, "", timeout_s=timeout_s).health()
    except PaperBrokerError:
        return None
    pid = health.get("pid") if isinstance(health, dict) else None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def key_refused_problem(mode: ExecutionMode, host: str, detail: str) -> str:
    """What to do when the server at `host` refuses APP_KEY: where the right key comes from, for this server."""
    pid = paper_broker_pid(host) if mode is ExecutionMode.PAPER else None
    if pid is not None:
        return (f"APP_KEY: refused by the paper broker at {host} (pid {pid}, {detail}) -- a paper broker accepts "
                "only the key it was started with, and this one was started with another (by another checkout, "
                f"or before APP_KEY in .env changed): stop it with `kill {pid}` (its books stay in its state file) "
                "and the daemon starts one with the key in .env, or put the key it was started with in APP_KEY")
    if mode is ExecutionMode.PAPER:
        return (f"APP_KEY: refused by the server at {host} ({detail}), which is not the paper broker -- in mode "
                "paper HOST_SERVER must be the paper broker (e.g. http://127.0.0.1:5000, started by the daemon "
                "with the APP_KEY in .env)")
    return (f"APP_KEY: refused by the OpenAlgo server at {host} ({detail}) -- copy the key from that server's "
            "API Key page (log in to its web UI, open API Key) into APP_KEY in .env; OpenAlgo also refuses a "
            "right key when its broker login has expired: log in to the broker in OpenAlgo again (every morning)")
