"""The sandbox's day boundaries on the broker's clock: a session starts at 03:00 IST, T+1 settles at 00:00 IST.

OpenAlgo's sandbox shows only the current session in the orderbook, tradebook and positionbook and reports
`m2mrealized` for the session alone; rows of earlier sessions stay stored but leave the day's books. The
clock is the engine's (wall time, or the replay clock), so a replayed day starts a session like a real one.
"""
from __future__ import annotations

from datetime import datetime
from datetime import time as dtime

from core.clock import IST
from paper.market_hours import latest_boundary

SESSION_START = dtime(3, 0)     # OpenAlgo's SESSION_EXPIRY_TIME default
SETTLEMENT_AT = dtime(0, 0)     # the sandbox's T+1 settlement job (CNC positions become holdings)


def session_start(t: float) -> float:
    """Epoch of the start of the session `t` belongs to (the latest 03:00 IST at or before `t`)."""
    return latest_boundary(t, SESSION_START)


def settlement_boundary(t: float) -> float:
    """Epoch of the latest 00:00 IST at or before `t`: CNC positions opened before it are settled."""
    return latest_boundary(t, SETTLEMENT_AT)


def parse_stamp(text: str) -> float:
    """Epoch of a "YYYY-mm-dd HH:MM:SS" IST stamp (rows stored before they carried their epoch)."""
    return IST.localize(datetime.strptime(text, "%Y-%m-%d %H:%M:%S")).timestamp()
