"""Seeded synthetic NSE trading days, tick for tick in the shape the Fyers SDK hands to on_message.

Why: replay must run the daemon's real code on a full day (about 4.5 million ticks for 200 symbols)
without a recording, deterministically, and faster than the pipeline consumes it. So each symbol's
path is computed with numpy a window of seconds at a time (per-symbol random streams, so a symbol's day
does not depend on which other tickers are generated with it), and only the final step builds dicts.

Model, per symbol and day: a base price from a hash of the name (100-4000 rupees, stable across days);
a previous close and opening gap drawn per day; a trending day (random walk with drift) or a
mean-reverting day (an Ornstein-Uhlenbeck path around the open); volatility and tick rate that are
higher after the open and before the close; bursts and quiet spells from a log-normal activity process.
About 60% of ticks are trades (volume, last traded price/time/qty change); the rest are quote updates
where only exch_feed_time, bid/ask and the quantities change, as real full-state messages do.
Prices are whole paise on the 0.05 tick and are converted to floats exactly as the SDK does
(int / 100), with ch/chp rounded the way the SDK rounds them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime

import numpy as np

from core.clock import ist_epoch
from core.config import SessionConfig
from core.types import TICK_FIELDS, FyersTick, TickColumns

TICK_PAISE = 5              # NSE equity tick size: 0.05 rupees
TRADE_SHARE = 0.6           # share of ticks that are trades; the rest are quote updates
_EMIT_SLICE = 8192          # ticks converted to Python objects at a time
_N_DICT_COLUMNS = 19        # _window_columns' columns that make the dicts (the symbol codes follow them)
_BIG = 1 << 40              # offset separating symbols in grouped running max/min (prices < 2**31 paise)


def _h64(*parts: object) -> int:
    """Stable 64-bit hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def base_price(ticker: str, seed: int) -> float:
    """The symbol's price level in rupees (100-4000, log-uniform; an index, NSE:...-INDEX, 10000-60000 as NSE's
    traded indexes are, so its options are priced at a realistic level), stable across days."""
    u = (_h64("base", seed, ticker) >> 11) / float(1 << 53)
    low, high = (10_000.0, 60_000.0) if ticker.endswith("-INDEX") else (100.0, 4000.0)
    paise = round(np.exp(np.log(low) + u * (np.log(high) - np.log(low))) * 100 / TICK_PAISE) * TICK_PAISE
    return paise / 100


def _ar1(e: np.ndarray, a: float, x0: float) -> np.ndarray:
    """x[t] = a*x[t-1] + e[t] for t = 1..n with x[0] = x0, vectorised (closed form; fine for n*(1-a) < ~300)."""
    p = a ** np.arange(1, e.shape[0] + 1)
    return p * (x0 + np.cumsum(e / p))


def _group_cumsum(x: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    cs = np.cumsum(x)
    return cs - np.repeat(cs[starts] - x[starts], sizes)


class _Symbol:
    """One symbol's parameters for the day and its running state between windows."""

    __slots__ = ("name", "rng", "prev_close", "open_log", "trending", "drift", "ou_a", "sigma", "rate",
                 "int_a", "int_sd", "book_a", "lot_value", "book_level", "p2", "p3",
                 "x", "z_int", "z_buy", "z_sell", "traded", "ltp", "ltt", "ltq", "vol", "pq",
                 "high", "low", "open")

    def __init__(self, name: str, seed: int, day: date, n_seconds: int):
        self.name = name
        # traits of the stock: stable across days
        g0 = np.random.default_rng([seed & 0xFFFFFFFF, _h64("traits", name) & 0xFFFFFFFF, 1])
        price = base_price(name, seed)
        daily_vol = g0.uniform(0.010, 0.030)
        self.rate = float(np.clip(np.exp(0.4 * g0.standard_normal() - 0.08), 0.3, 2.5))  # ticks per second
        self.lot_value = g0.uniform(15_000.0, 60_000.0)           # rupees in a typical last trade
        self.book_level = g0.uniform(2e8, 1e9) / price            # shares resting on each side of the book
        # this day
        self.rng = np.random.default_rng([seed & 0xFFFFFFFF, _h64("day", name) & 0xFFFFFFFF, day.toordinal()])
        g = self.rng
        pc = price * float(np.exp(0.08 * g.standard_normal()))
        self.prev_close = max(TICK_PAISE, int(round(pc * 100 / TICK_PAISE)) * TICK_PAISE)
        self.open_log = float(np.log(self.prev_close / 100.0) + 0.006 * g.standard_normal())
        self.sigma = daily_vol / np.sqrt(n_seconds)                  # per-second volatility, before the profile
        self.trending = bool(g.random() < 0.4)
        self.drift = float(g.choice((-1.0, 1.0)) * g.uniform(0.5, 1.8) * daily_vol / n_seconds)
        half_life = g.uniform(600.0, 3600.0)                          # mean-reverting days
        self.ou_a = float(np.exp(-np.log(2.0) / half_life))
        self.int_a = float(np.exp(-np.log(2.0) / g.uniform(20.0, 90.0)))  # bursts last tens of seconds
        self.int_sd = float(g.uniform(0.6, 1.1))
        self.book_a = float(np.exp(-np.log(2.0) / 120.0))
        self.p2 = min(0.6, price / 6000.0)                            # chance of a 2-tick spread
        self.p3 = self.p2 / 4.0
        self.x = 0.0
        self.z_int = float(g.standard_normal())
        self.z_buy = float(g.standard_normal())
        self.z_sell = float(g.standard_normal())
        self.traded = False
        self.ltp = self.ltt = self.ltq = self.vol = self.pq = self.high = self.low = self.open = 0


def _profiles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Intraday shapes, normalised: tick rate (mean 1) and volatility (RMS 1), both U-shaped."""
    t = np.arange(n, dtype=np.float64)
    rate = 1.0 + 2.5 * np.exp(-t / 600.0) + 1.5 * np.exp(-(n - 1 - t) / 900.0)
    vol = 1.0 + 2.0 * np.exp(-t / 900.0) + 0.8 * np.exp(-(n - 1 - t) / 1200.0)
    return rate / rate.mean(), vol / np.sqrt(np.mean(vol ** 2))


def _round4(v: np.ndarray) -> np.ndarray:
    """Python's round(v, 4) for every element (numpy's rint differs only next to exact half-ways)."""
    s = v * 1e4
    out = np.rint(s) / 1e4
    near = np.abs(np.abs(s - np.floor(s)) - 0.5) < 1e-6
    if near.any():
        idx = np.nonzero(near)[0]
        out[idx] = [round(float(x), 4) for x in v[idx]]
    return out


def generate_day(tickers: Iterable[str], day: date, seed: int, session: SessionConfig | None = None, *,
                 start_after: int | None = None, window_s: int = 300) -> Iterator[FyersTick]:
    """Yield one synthetic session of full-mode SymbolUpdate ticks for `tickers` on `day`.

    Ticks are in non-decreasing exch_feed_time from session.open to just before session.close (IST);
    the order within a second is seeded too, so the same (tickers, day, seed) always gives the same
    sequence. `start_after` (epoch seconds) skips ticks at or before it without changing the others.
    `window_s` is how many seconds are computed at once (memory vs. speed); it is part of the day's
    identity, like the seed: another value gives another (equally valid) day.
    Memory stays near 100 MB for 200 symbols; throughput is measured by bench/feeds.py.
    """
    names = list(dict.fromkeys(tickers))
    session = session or SessionConfig()
    t_open = ist_epoch(day, session.open)
    n_seconds = int((datetime.combine(day, session.close) - datetime.combine(day, session.open)).total_seconds())
    if n_seconds <= 0:
        raise ValueError(f"session close {session.close} is not after open {session.open}")
    if window_s < 1:
        raise ValueError(f"window_s must be at least 1, got {window_s}")
    return _generate(names, day, seed, t_open, n_seconds, start_after, window_s)


def _generate(names: list[str], day: date, seed: int, t_open: int, n_seconds: int,
              start_after: int | None, window_s: int) -> Iterator[FyersTick]:
    for columns in _windows(names, day, seed, t_open, n_seconds, start_after, window_s):
        # the hot loop: one dict per tick, built in this frame (no nested generators); numpy columns are
        # turned into Python lists a slice at a time to keep memory low at the busy open
        for lo_i in range(0, columns[0].shape[0], _EMIT_SLICE):
            part = [col[lo_i:lo_i + _EMIT_SLICE].tolist() for col in columns[:_N_DICT_COLUMNS]]
            for (ltp, vol, ltt, eft, bs, as_, bp, ap, ltq, tb, ts, avg, lo, hi, op, pc, sym, ch,
                 chp) in zip(*part, strict=False):
                yield {"ltp": ltp, "vol_traded_today": vol, "last_traded_time": ltt, "exch_feed_time": eft,
                       "bid_size": bs, "ask_size": as_, "bid_price": bp, "ask_price": ap, "last_traded_qty": ltq,
                       "tot_buy_qty": tb, "tot_sell_qty": ts, "avg_trade_price": avg, "low_price": lo,
                       "high_price": hi, "lower_ckt": 0, "upper_ckt": 0, "open_price": op,
                       "prev_close_price": pc, "type": "sf", "symbol": sym, "ch": ch, "chp": chp}
            part = None
        columns = None


class SyntheticDay:
    """A synthetic day readable two ways, tick for tick the same: iterated, the FyersTick dicts generate_day
    yields (what a socket delivers); windows(), the same ticks as TickColumns a window at a time, for a feed
    that judges, routes and encodes them in bulk (pipeline.batcher.TickBatcher.dispatch_columns)."""

    def __init__(self, tickers: Iterable[str], day: date, seed: int, session: SessionConfig | None = None, *,
                 window_s: int = 300):
        self.tickers = list(dict.fromkeys(tickers))
        self.day, self.seed, self.session, self.window_s = day, seed, session or SessionConfig(), window_s

    def __iter__(self) -> Iterator[FyersTick]:
        return generate_day(self.tickers, self.day, self.seed, self.session, window_s=self.window_s)

    def windows(self) -> Iterator[TickColumns]:
        """The day's ticks in emission order, one TickColumns per generated window (no dict per tick)."""
        t_open, n_seconds = _span(self.day, self.session)
        if self.window_s < 1:
            raise ValueError(f"window_s must be at least 1, got {self.window_s}")
        names = tuple(self.tickers)
        for c in _windows(self.tickers, self.day, self.seed, t_open, n_seconds, None, self.window_s):
            values = {f: c[k] for k, f in enumerate(TICK_FIELDS[:14])}
            values.update(open_price=c[14], prev_close_price=c[15], ch=c[17], chp=c[18])
            yield TickColumns(values, {"lower_ckt": 0, "upper_ckt": 0, "type": "sf"}, c[19], names)


def _span(day: date, session: SessionConfig) -> tuple[int, int]:
    """The session's open (epoch seconds) and its length in seconds."""
    t_open = ist_epoch(day, session.open)
    n_seconds = int((datetime.combine(day, session.close) - datetime.combine(day, session.open)).total_seconds())
    if n_seconds <= 0:
        raise ValueError(f"session close {session.close} is not after open {session.open}")
    return t_open, n_seconds


def day_columns(tickers: Iterable[str], day: date, seed: int, session: SessionConfig | None = None, *,
                window_s: int = 300) -> Iterator[dict[str, np.ndarray]]:
    """The same day as generate_day, as numpy columns a window at a time, without building a dict per tick:
    what the paper broker's history needs (`ltp`, `vol_traded_today`, `exch_feed_time`, `symbol`), about five
    times faster. Rows are in generate_day's emission order."""
    names = list(dict.fromkeys(tickers))
    session = session or SessionConfig()
    t_open = ist_epoch(day, session.open)
    n_seconds = int((datetime.combine(day, session.close) - datetime.combine(day, session.open)).total_seconds())
    if n_seconds <= 0:
        raise ValueError(f"session close {session.close} is not after open {session.open}")
    for c in _windows(names, day, seed, t_open, n_seconds, None, window_s):
        yield {"ltp": c[0], "vol_traded_today": c[1], "exch_feed_time": c[3], "symbol": c[16]}


def _windows(names: list[str], day: date, seed: int, t_open: int, n_seconds: int,
             start_after: int | None, window_s: int) -> Iterator[list[np.ndarray]]:
    """Each window's tick columns in emission order (see _window_columns for the column order)."""
    syms = [_Symbol(n, seed, day, n_seconds) for n in names]
    rate_prof, vol_prof = _profiles(n_seconds)
    interleave = np.random.default_rng([seed & 0xFFFFFFFF, day.toordinal(), 0x1D5])
    names_arr = np.array(names, dtype=object)
    prev_arr = np.array([s.prev_close for s in syms], dtype=np.int64)
    prev_f = prev_arr / 100.0

    for w0 in range(0, n_seconds, window_s):
        w1 = min(n_seconds, w0 + window_s)
        skip_window = start_after is not None and t_open + w1 - 1 <= start_after
        W = w1 - w0
        secs_w = np.arange(w0, w1)
        cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "sym", "sec", "trade", "tp", "inc", "ltq", "bid", "ask", "bs", "as", "tb", "ts")}
        for i, s in enumerate(syms):
            g = s.rng
            e = g.standard_normal((4, W))
            # activity: bursts and quiet spells around the intraday profile
            zi = _ar1(e[0] * np.sqrt(1.0 - s.int_a ** 2), s.int_a, s.z_int)
            s.z_int = float(zi[-1])
            mult = np.exp(s.int_sd * zi - 0.5 * s.int_sd ** 2)
            counts = g.poisson(s.rate * rate_prof[w0:w1] * mult)
            # fair log price relative to the open, per second
            sig = s.sigma * vol_prof[w0:w1] * np.sqrt(mult) * np.exp(-0.125 * s.int_sd ** 2) * e[1]
            if s.trending:
                x = s.x + np.cumsum(s.drift + sig)
            else:
                x = _ar1(sig, s.ou_a, s.x)
            s.x = float(x[-1])
            zb = _ar1(e[2] * np.sqrt(1.0 - s.book_a ** 2), s.book_a, s.z_buy)
            zs = _ar1(e[3] * np.sqrt(1.0 - s.book_a ** 2), s.book_a, s.z_sell)
            s.z_buy, s.z_sell = float(zb[-1]), float(zs[-1])
            n = int(counts.sum())
            if n == 0:
                continue
            mid = np.exp(s.open_log + x) * 100.0                    # paise, float
            sec = np.repeat(secs_w, counts)
            rel = sec - w0
            u = g.random((4, n))
            z = g.standard_normal((6, n))
            trade = u[0] < TRADE_SHARE
            if not s.traded:
                trade[0] = True                                      # the opening trade
            spread = (1 + (u[1] < s.p2) + (u[1] < s.p3)) * TICK_PAISE
            m = mid[rel]
            bid = np.maximum(TICK_PAISE, np.rint((m - spread / 2.0) / TICK_PAISE).astype(np.int64) * TICK_PAISE)
            ask = bid + spread
            price_r = m / 100.0
            ltq = np.maximum(1, np.rint(np.exp(np.log(s.lot_value / price_r) + 0.9 * z[0] - 0.4))).astype(np.int64)
            extra = np.rint(np.exp(np.log(8 * s.lot_value / price_r) + 1.0 * z[1] - 0.5)).astype(np.int64)
            inc = ltq + np.where(u[2] < 0.3, 0, extra)               # several trades between two messages
            if not s.traded:
                inc[0] *= 20                                         # pre-open auction volume
            level = s.book_level
            cols["sym"].append(np.full(n, i, dtype=np.int64))
            cols["sec"].append(sec)
            cols["trade"].append(trade)
            cols["tp"].append(np.where(u[3] < 0.5, ask, bid))        # buyer lifts the ask or seller hits the bid
            cols["inc"].append(inc)
            cols["ltq"].append(ltq)
            cols["bid"].append(bid)
            cols["ask"].append(ask)
            cols["bs"].append(np.maximum(1, np.rint(np.exp(np.log(4 * s.lot_value / price_r) + 0.8 * z[2]))
                                         ).astype(np.int64))
            cols["as"].append(np.maximum(1, np.rint(np.exp(np.log(4 * s.lot_value / price_r) + 0.8 * z[3]))
                                         ).astype(np.int64))
            cols["tb"].append(np.rint(level * np.exp(0.35 * zb[rel]) * (1.0 + 0.002 * z[4])).astype(np.int64))
            cols["ts"].append(np.rint(level * np.exp(0.35 * zs[rel]) * (1.0 + 0.002 * z[5])).astype(np.int64))
            s.traded = True
        if not cols["sym"]:
            continue
        columns = _window_columns(syms, cols, names_arr, prev_arr, prev_f, t_open, interleave,
                                  start_after, skip_window)
        if columns is None:
            continue
        yield columns
        columns = None


def _window_columns(syms: list[_Symbol], cols: dict[str, list[np.ndarray]], names_arr: np.ndarray,
                    prev_arr: np.ndarray, prev_f: np.ndarray, t_open: int, interleave: np.random.Generator,
                    start_after: int | None, skip_window: bool) -> list[np.ndarray] | None:
    """Compute one window's running state (volume, VWAP, day high/low, last trade) for every symbol at
    once, update the carried state, and return the tick columns in emission order (None: nothing to emit)."""
    c = {k: np.concatenate(v) for k, v in cols.items()}
    sym, sec, trade = c["sym"], c["sec"], c["trade"]
    N = sym.shape[0]
    present = np.array([a[0] for a in cols["sym"]], dtype=np.int64)   # symbols with ticks, layout order
    sizes = np.array([a.shape[0] for a in cols["sym"]], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ends = starts + sizes - 1
    carry = {k: np.array([getattr(syms[j], k) for j in present], dtype=np.int64)
             for k in ("ltp", "ltt", "ltq", "vol", "pq", "high", "low", "open")}
    first_day = np.array([syms[j].open == 0 for j in present])
    rep = lambda a: np.repeat(a, sizes)  # noqa: E731

    tp = c["tp"]
    qty = np.where(trade, c["inc"], 0)
    vol = rep(carry["vol"]) + _group_cumsum(qty, starts, sizes)
    pq = rep(carry["pq"]) + _group_cumsum(qty * tp, starts, sizes)
    last = np.maximum.accumulate(np.where(trade, np.arange(N), -1))
    has = last >= rep(starts)
    last_c = np.maximum(last, 0)
    ltp = np.where(has, tp[last_c], rep(carry["ltp"]))
    ltt = np.where(has, sec[last_c] + t_open, rep(carry["ltt"]))
    ltq = np.where(has, c["ltq"][last_c], rep(carry["ltq"]))
    off = rep(np.arange(sizes.shape[0], dtype=np.int64) * _BIG)
    high = np.maximum.accumulate(ltp + off) - off
    low = off - np.maximum.accumulate(off - ltp)
    high = np.where(rep(first_day), high, np.maximum(high, rep(carry["high"])))
    low = np.where(rep(first_day), low, np.minimum(low, rep(carry["low"])))
    opn = np.where(rep(first_day), tp[starts].repeat(sizes), rep(carry["open"]))
    avg = np.rint(pq / vol).astype(np.int64)

    for k, arr in (("ltp", ltp), ("ltt", ltt), ("ltq", ltq), ("vol", vol), ("pq", pq), ("high", high),
                   ("low", low), ("open", opn)):
        vals = arr[ends].tolist()
        for j, v in zip(present.tolist(), vals, strict=False):
            setattr(syms[j], k, v)
    # global order: by second, then a seeded shuffle across symbols; a symbol's own ticks keep their order
    keys = interleave.random(N)  # drawn even for a skipped window, so start_after changes nothing after it
    if skip_window:
        return None
    order = np.lexsort((keys, sec))
    pos = np.argsort(sym[order], kind="stable")
    emit = np.empty(N, dtype=np.int64)
    emit[pos] = np.arange(N)
    eft = sec[emit] + t_open
    if start_after is not None:
        emit = emit[eft > start_after]
        eft = eft[eft > start_after]
    se = sym[emit]
    ltp_e = ltp[emit]
    pc_e = prev_arr[se]
    ch = (ltp_e - pc_e) / 100.0
    chp = _round4(ch / prev_f[se] * 100)
    return [
        ltp_e / 100.0, vol[emit], ltt[emit], eft, c["bs"][emit], c["as"][emit], c["bid"][emit] / 100.0,
        c["ask"][emit] / 100.0, ltq[emit], c["tb"][emit], c["ts"][emit], avg[emit] / 100.0, low[emit] / 100.0,
        high[emit] / 100.0, opn[emit] / 100.0, pc_e / 100.0, names_arr[se], ch, chp, se]


def default_tickers(n: int) -> list[str]:
    """`n` made-up but well-formed Fyers tickers (NSE:SYM001-EQ ...) for benchmarks and tests."""
    return [f"NSE:SYM{i:03d}-EQ" for i in range(n)]


__all__ = ["generate_day", "SyntheticDay", "day_columns", "base_price", "default_tickers", "TICK_PAISE"]
