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
    """Each window's tick columns in emission order (see _window_columns for the column order).

    Each symbol draws from its own generator, in the same order as ever (a window's normals, its tick counts,
    then its ticks' uniforms and normals); the arithmetic on the draws runs on every symbol at once, element
    for element the same operations, so the day is the same to the last bit (tests/test_feeds_synthetic.py
    pins it) at a fraction of the per-symbol cost."""
    syms = [_Symbol(n, seed, day, n_seconds) for n in names]
    rate_prof, vol_prof = _profiles(n_seconds)
    interleave = np.random.default_rng([seed & 0xFFFFFFFF, day.toordinal(), 0x1D5])
    names_arr = np.array(names, dtype=object)
    prev_arr = np.array([s.prev_close for s in syms], dtype=np.int64)
    prev_f = prev_arr / 100.0
    if not syms:
        return
    # per-symbol constants, each computed as the scalar code computes it, then held as columns
    col = lambda f: np.array([f(s) for s in syms], dtype=np.float64)  # noqa: E731
    rate, int_a, int_sd = col(lambda s: s.rate), col(lambda s: s.int_a), col(lambda s: s.int_sd)
    c_int = col(lambda s: np.sqrt(1.0 - s.int_a ** 2))
    k_int = col(lambda s: 0.5 * s.int_sd ** 2)
    damp = col(lambda s: np.exp(-0.125 * s.int_sd ** 2))
    sigma, drift, ou_a = col(lambda s: s.sigma), col(lambda s: s.drift), col(lambda s: s.ou_a)
    book_a, c_book = col(lambda s: s.book_a), col(lambda s: np.sqrt(1.0 - s.book_a ** 2))
    open_log, p2, p3 = col(lambda s: s.open_log), col(lambda s: s.p2), col(lambda s: s.p3)
    lot, lot8, lot4 = col(lambda s: s.lot_value), col(lambda s: 8 * s.lot_value), col(lambda s: 4 * s.lot_value)
    level = col(lambda s: s.book_level)
    trending = np.array([s.trending for s in syms], dtype=bool)
    z_int, x0 = col(lambda s: s.z_int), col(lambda s: s.x)
    z_buy, z_sell = col(lambda s: s.z_buy), col(lambda s: s.z_sell)
    traded = np.zeros(len(syms), dtype=bool)

    for w0 in range(0, n_seconds, window_s):
        w1 = min(n_seconds, w0 + window_s)
        skip_window = start_after is not None and t_open + w1 - 1 <= start_after
        W = w1 - w0
        secs_w = np.arange(w0, w1)
        e = np.stack([s.rng.standard_normal((4, W)) for s in syms])
        # activity: bursts and quiet spells around the intraday profile
        zi = _ar1_rows(e[:, 0] * c_int[:, None], int_a, z_int)
        z_int = zi[:, -1].copy()
        mult = np.exp(int_sd[:, None] * zi - k_int[:, None])
        lam = rate[:, None] * rate_prof[None, w0:w1] * mult
        counts = np.stack([s.rng.poisson(lam[i]) for i, s in enumerate(syms)])
        # fair log price relative to the open, per second
        sig = sigma[:, None] * vol_prof[None, w0:w1] * np.sqrt(mult) * damp[:, None] * e[:, 1]
        x = np.empty_like(sig)
        t = trending
        x[t] = x0[t][:, None] + np.cumsum(drift[t][:, None] + sig[t], axis=1)
        x[~t] = _ar1_rows(sig[~t], ou_a[~t], x0[~t])
        x0 = x[:, -1].copy()
        zb = _ar1_rows(e[:, 2] * c_book[:, None], book_a, z_buy)
        zs = _ar1_rows(e[:, 3] * c_book[:, None], book_a, z_sell)
        z_buy, z_sell = zb[:, -1].copy(), zs[:, -1].copy()
        sizes_all = counts.sum(axis=1)
        present = np.flatnonzero(sizes_all > 0)
        if not len(present):
            continue
        draws = [(syms[i].rng.random((4, int(sizes_all[i]))), syms[i].rng.standard_normal((6, int(sizes_all[i]))))
                 for i in present.tolist()]
        u = np.concatenate([d[0] for d in draws], axis=1)
        z = np.concatenate([d[1] for d in draws], axis=1)
        sizes = sizes_all[present]
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        row = np.repeat(present, sizes)
        sec = np.repeat(np.tile(secs_w, len(present)), counts[present].ravel())
        rel = sec - w0
        fresh = starts[~traded[present]]                             # each symbol's first tick of the day
        trade = u[0] < TRADE_SHARE
        trade[fresh] = True                                          # the opening trade
        spread = (1 + (u[1] < p2[row]) + (u[1] < p3[row])) * TICK_PAISE
        m = np.exp(open_log[:, None] + x)[row, rel] * 100.0          # mid, paise, float
        bid = np.maximum(TICK_PAISE, np.rint((m - spread / 2.0) / TICK_PAISE).astype(np.int64) * TICK_PAISE)
        ask = bid + spread
        price_r = m / 100.0
        ltq = np.maximum(1, np.rint(np.exp(np.log(lot[row] / price_r) + 0.9 * z[0] - 0.4))).astype(np.int64)
        extra = np.rint(np.exp(np.log(lot8[row] / price_r) + 1.0 * z[1] - 0.5)).astype(np.int64)
        inc = ltq + np.where(u[2] < 0.3, 0, extra)                   # several trades between two messages
        inc[fresh] *= 20                                             # pre-open auction volume
        traded[present] = True
        c = {"sym": row, "sec": sec, "trade": trade,
             "tp": np.where(u[3] < 0.5, ask, bid),                   # buyer lifts the ask or seller hits the bid
             "inc": inc, "ltq": ltq, "bid": bid, "ask": ask,
             "bs": np.maximum(1, np.rint(np.exp(np.log(lot4[row] / price_r) + 0.8 * z[2]))).astype(np.int64),
             "as": np.maximum(1, np.rint(np.exp(np.log(lot4[row] / price_r) + 0.8 * z[3]))).astype(np.int64),
             "tb": np.rint(level[row] * np.exp(0.35 * zb[row, rel]) * (1.0 + 0.002 * z[4])).astype(np.int64),
             "ts": np.rint(level[row] * np.exp(0.35 * zs[row, rel]) * (1.0 + 0.002 * z[5])).astype(np.int64)}
        columns = _window_columns(syms, c, present, sizes, names_arr, prev_arr, prev_f, t_open, interleave,
                                  start_after, skip_window)
        if columns is None:
            continue
        yield columns
        columns = None


def _ar1_rows(e: np.ndarray, a: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """_ar1 for each row of e, with its own a and x0 (the same operations, element for element)."""
    p = a[:, None] ** np.arange(1, e.shape[1] + 1)[None, :]
    return p * (x0[:, None] + np.cumsum(e / p, axis=1))


def _window_columns(syms: list[_Symbol], c: dict[str, np.ndarray], present: np.ndarray, sizes: np.ndarray,
                    names_arr: np.ndarray, prev_arr: np.ndarray, prev_f: np.ndarray, t_open: int,
                    interleave: np.random.Generator, start_after: int | None,
                    skip_window: bool) -> list[np.ndarray] | None:
    """Compute one window's running state (volume, VWAP, day high/low, last trade) for every symbol at
    once, update the carried state, and return the tick columns in emission order (None: nothing to emit).
    `c`: the window's tick columns, symbol by symbol (`present`, in layout order, `sizes` ticks each)."""
    sym, sec, trade = c["sym"], c["sec"], c["trade"]
    N = sym.shape[0]
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
    so = sym[order]
    pos = np.argsort(so.astype(np.uint16) if len(syms) < 1 << 16 else so, kind="stable")  # stable: radix on small ints
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
