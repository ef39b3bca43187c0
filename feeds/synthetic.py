"""Seeded synthetic NSE trading days, tick for tick in the shape the Fyers SDK hands to on_message.

Why: replay must run the daemon's real code on a full day (about 4.5 million ticks for 200 symbols)
without a recording, deterministically, and faster than the pipeline consumes it. So each symbol's
path is computed with numpy a block of windows of seconds at a time (per-symbol random streams, so a symbol's day
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


def _group_cumsum(x: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    cs = np.cumsum(x)
    return cs - np.repeat(cs[starts] - x[starts], sizes)


class _Symbol:
    """One symbol's parameters for the day and its random stream (the running state is _Carry's)."""

    __slots__ = ("name", "rng", "prev_close", "open_log", "trending", "drift", "ou_a", "sigma", "rate",
                 "int_a", "int_sd", "book_a", "lot_value", "book_level", "p2", "p3",
                 "z_int", "z_buy", "z_sell")

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
        self.z_int = float(g.standard_normal())
        self.z_buy = float(g.standard_normal())
        self.z_sell = float(g.standard_normal())


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


_BLOCK_SYMBOL_SECONDS = 1 << 16  # symbol-seconds of windows computed together (one symbol: its whole day)


class _Params:
    """The symbols' constants as columns, each computed as the per-symbol code computed it."""

    def __init__(self, syms: list[_Symbol]):
        col = lambda f: np.array([f(s) for s in syms], dtype=np.float64)  # noqa: E731
        self.rate, self.int_a, self.int_sd = col(lambda s: s.rate), col(lambda s: s.int_a), col(lambda s: s.int_sd)
        self.c_int = col(lambda s: np.sqrt(1.0 - s.int_a ** 2))
        self.k_int = col(lambda s: 0.5 * s.int_sd ** 2)
        self.damp = col(lambda s: np.exp(-0.125 * s.int_sd ** 2))
        self.sigma, self.drift, self.ou_a = col(lambda s: s.sigma), col(lambda s: s.drift), col(lambda s: s.ou_a)
        self.book_a, self.c_book = col(lambda s: s.book_a), col(lambda s: np.sqrt(1.0 - s.book_a ** 2))
        self.open_log, self.p2, self.p3 = col(lambda s: s.open_log), col(lambda s: s.p2), col(lambda s: s.p3)
        self.lot, self.lot8 = col(lambda s: s.lot_value), col(lambda s: 8 * s.lot_value)
        self.lot4, self.level = col(lambda s: 4 * s.lot_value), col(lambda s: s.book_level)
        self.trending = np.array([s.trending for s in syms], dtype=bool)


class _Carry:
    """What runs on from one block of windows to the next: the processes' last values and each symbol's running
    volume, VWAP sums, last trade and day range (all int64 but the float processes)."""

    def __init__(self, syms: list[_Symbol]):
        n = len(syms)
        self.z_int = np.array([s.z_int for s in syms], dtype=np.float64)
        self.z_buy = np.array([s.z_buy for s in syms], dtype=np.float64)
        self.z_sell = np.array([s.z_sell for s in syms], dtype=np.float64)
        self.x = np.zeros(n)
        self.seen = np.zeros(n, dtype=bool)       # had a tick today (its first is the opening trade)
        self.ints = {k: np.zeros(n, dtype=np.int64) for k in ("ltp", "ltt", "ltq", "vol", "pq", "high", "low", "open")}


def _windows(names: list[str], day: date, seed: int, t_open: int, n_seconds: int,
             start_after: int | None, window_s: int) -> Iterator[list[np.ndarray]]:
    """Each window's tick columns in emission order (see _block_columns for the column order).

    Each symbol draws from its own generator, in the same order as ever (a window's normals, its tick counts,
    then its ticks' uniforms and normals): only that, and the activity process the counts need, runs window by
    window. Everything else runs on a block of windows and every symbol at once (a single symbol's whole day),
    element for element the operations the window-by-window code did (each window's recurrences restart from
    the previous window's last value, carried as the same float), so the day is the same to the last bit
    (tests/test_feeds_synthetic.py pins it) at a fraction of the per-window cost."""
    syms = [_Symbol(n, seed, day, n_seconds) for n in names]
    if not syms:
        return
    prof = _profiles(n_seconds)
    interleave = np.random.default_rng([seed & 0xFFFFFFFF, day.toordinal(), 0x1D5])
    names_arr = np.array(names, dtype=object)
    prev_arr = np.array([s.prev_close for s in syms], dtype=np.int64)
    par, carry = _Params(syms), _Carry(syms)
    full, rest = divmod(n_seconds, window_s)
    per_block = max(1, _BLOCK_SYMBOL_SECONDS // (len(syms) * window_s))
    blocks = [(k0 * window_s, min(per_block, full - k0), window_s) for k0 in range(0, full, per_block)]
    if rest:
        blocks.append((full * window_s, 1, rest))
    for b0, n_win, width in blocks:
        cols = _block_columns(syms, par, carry, prof, b0, n_win, width, t_open, interleave, names_arr, prev_arr)
        if cols is None:
            continue
        columns, per_window = cols
        lo = 0
        for k, n_k in enumerate(per_window.tolist()):
            hi = lo + n_k
            w1 = b0 + (k + 1) * width
            if n_k and not (start_after is not None and t_open + w1 - 1 <= start_after):
                part = [c[lo:hi] for c in columns]
                if start_after is not None:
                    keep = part[3] > start_after
                    part = [c[keep] for c in part]
                yield part
            lo = hi


def _chain(x0: np.ndarray, last: np.ndarray, p_last: np.ndarray | None) -> np.ndarray:
    """Each window's starting value of a recurrence restarted per window from the previous window's last value:
    x_last = x0 + last (a walk) or p_last * (x0 + last) (an AR(1)), in Python floats (the same IEEE doubles as
    numpy's element-wise ops, at a fraction of the per-call cost). x0 (n,), last (n, K) -> (n, K)."""
    out = []
    pl = p_last.tolist() if p_last is not None else [None] * x0.shape[0]
    for v, row, p in zip(x0.tolist(), last.tolist(), pl, strict=True):
        starts = []
        for c in row:
            starts.append(v)
            v = v + c if p is None else p * (v + c)
        out.append(starts)
    return np.array(out, dtype=np.float64).reshape(last.shape)


def _ar1_block(e: np.ndarray, a: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """x[t] = a*x[t-1] + e[t] within each window of e (n, K, W), each window restarting from the previous one's
    last value: closed form (p * (x0 + cumsum(e / p)), p = a**t; fine for a window's W*(1-a) < ~300), as the
    window-by-window code computed it."""
    p = a[:, None] ** np.arange(1, e.shape[2] + 1)[None, :]
    cs = np.cumsum(e / p[:, None, :], axis=2)
    return p[:, None, :] * (_chain(x0, cs[:, :, -1], p[:, -1])[:, :, None] + cs)


def _draw_block(syms: list[_Symbol], par: _Params, carry: _Carry, rate_prof: np.ndarray, b0: int, n_win: int,
                width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The block's draws, window by window in each symbol's own order: normals (n, K, 4, W), the activity
    multiplier (n, K, W), tick counts per second (n, K, W), and the ticks' uniforms (4, N) and normals (6, N),
    laid out window by window, then symbol by symbol, then in time."""
    n = len(syms)
    e = np.empty((n, n_win, 4, width))
    mult = np.empty((n, n_win, width))
    counts = np.empty((n, n_win, width), dtype=np.int64)
    p_int = par.int_a[:, None] ** np.arange(1, width + 1)[None, :]
    u_parts: list[np.ndarray] = []
    z_parts: list[np.ndarray] = []
    for k in range(n_win):
        w0 = b0 + k * width
        for i, s in enumerate(syms):
            s.rng.standard_normal(out=e[i, k])
        zi = p_int * (carry.z_int[:, None] + np.cumsum(e[:, k, 0] * par.c_int[:, None] / p_int, axis=1))
        carry.z_int = zi[:, -1].copy()
        m = np.exp(par.int_sd[:, None] * zi - par.k_int[:, None])
        mult[:, k] = m
        lam = par.rate[:, None] * rate_prof[None, w0:w0 + width] * m
        for i, s in enumerate(syms):
            counts[i, k] = s.rng.poisson(lam[i])
        sizes = counts[:, k].sum(axis=1)
        for i in np.flatnonzero(sizes).tolist():
            u_parts.append(syms[i].rng.random((4, int(sizes[i]))))
            z_parts.append(syms[i].rng.standard_normal((6, int(sizes[i]))))
    if not u_parts:
        return e, mult, counts, np.empty((4, 0)), np.empty((6, 0))
    return e, mult, counts, np.concatenate(u_parts, axis=1), np.concatenate(z_parts, axis=1)


def _block_columns(syms: list[_Symbol], par: _Params, carry: _Carry, prof: tuple[np.ndarray, np.ndarray],
                   b0: int, n_win: int, width: int, t_open: int, interleave: np.random.Generator,
                   names_arr: np.ndarray, prev_arr: np.ndarray) -> tuple[list[np.ndarray], np.ndarray] | None:
    """One block of `n_win` windows of `width` seconds from second `b0`: the tick columns in emission order and
    each window's tick count (its rows follow the previous window's), or None when no symbol ticked.
    Columns: ltp, vol, ltt, exch_feed_time, bid_size, ask_size, bid, ask, ltq, tot_buy, tot_sell, avg, low, high,
    open, prev_close, symbol name, ch, chp, symbol code."""
    rate_prof, vol_prof = prof
    n = len(syms)
    e, mult, counts, u_w, z_w = _draw_block(syms, par, carry, rate_prof, b0, n_win, width)
    # the paths, per second: fair log price relative to the open, and the two sides of the book
    vp = vol_prof[b0:b0 + n_win * width].reshape(n_win, width)
    sig = par.sigma[:, None, None] * vp[None] * np.sqrt(mult) * par.damp[:, None, None] * e[:, :, 1]
    x = np.empty_like(sig)
    t = par.trending
    if t.any():
        cs = np.cumsum(par.drift[t][:, None, None] + sig[t], axis=2)
        x[t] = _chain(carry.x[t], cs[:, :, -1], None)[:, :, None] + cs
    if not t.all():
        x[~t] = _ar1_block(sig[~t], par.ou_a[~t], carry.x[~t])
    carry.x = x[:, -1, -1].copy()
    zb = _ar1_block(e[:, :, 2] * par.c_book[:, None, None], par.book_a, carry.z_buy)
    zs = _ar1_block(e[:, :, 3] * par.c_book[:, None, None], par.book_a, carry.z_sell)
    carry.z_buy, carry.z_sell = zb[:, -1, -1].copy(), zs[:, -1, -1].copy()
    group = counts.sum(axis=2).T                                     # (K, n): ticks per window and symbol
    N = int(group.sum())
    if N == 0:
        return None
    # the ticks: drawn window by window (u_w, z_w); computed symbol by symbol, in time, as the running state needs
    row_w = np.repeat(np.tile(np.arange(n), n_win), group.ravel())
    sec_w = np.repeat(np.broadcast_to((b0 + np.arange(n_win * width)).reshape(n_win, 1, width),
                                      (n_win, n, width)).ravel(), counts.transpose(1, 0, 2).ravel())
    if n == 1 or n_win == 1:                                         # one symbol or one window: the same layout
        perm, row, sec, u, z = None, row_w, sec_w, u_w, z_w
    else:
        perm = np.argsort(row_w.astype(np.uint16) if n < 1 << 16 else row_w, kind="stable")
        row, sec = row_w[perm], sec_w[perm]
        u, z = u_w[:, perm], z_w[:, perm]
    rel = sec - b0
    sizes_all = group.sum(axis=0)
    present = np.flatnonzero(sizes_all)
    sizes = sizes_all[present]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    first_day = ~carry.seen[present]
    fresh = starts[first_day]                                        # each symbol's first tick of the day
    trade = u[0] < TRADE_SHARE
    trade[fresh] = True                                              # the opening trade
    spread = (1 + (u[1] < par.p2[row]) + (u[1] < par.p3[row])) * TICK_PAISE
    m = np.exp(par.open_log[row] + x.reshape(n, -1)[row, rel]) * 100.0   # mid, paise, float
    bid = np.maximum(TICK_PAISE, np.rint((m - spread / 2.0) / TICK_PAISE).astype(np.int64) * TICK_PAISE)
    ask = bid + spread
    price_r = m / 100.0
    t_ltq = np.maximum(1, np.rint(np.exp(np.log(par.lot[row] / price_r) + 0.9 * z[0] - 0.4))).astype(np.int64)
    extra = np.rint(np.exp(np.log(par.lot8[row] / price_r) + 1.0 * z[1] - 0.5)).astype(np.int64)
    inc = t_ltq + np.where(u[2] < 0.3, 0, extra)                     # several trades between two messages
    inc[fresh] *= 20                                                 # pre-open auction volume
    tp = np.where(u[3] < 0.5, ask, bid)                              # buyer lifts the ask or seller hits the bid
    bs = np.maximum(1, np.rint(np.exp(np.log(par.lot4[row] / price_r) + 0.8 * z[2]))).astype(np.int64)
    as_ = np.maximum(1, np.rint(np.exp(np.log(par.lot4[row] / price_r) + 0.8 * z[3]))).astype(np.int64)
    tb = np.rint(par.level[row] * np.exp(0.35 * zb.reshape(n, -1)[row, rel]) * (1.0 + 0.002 * z[4])).astype(np.int64)
    ts = np.rint(par.level[row] * np.exp(0.35 * zs.reshape(n, -1)[row, rel]) * (1.0 + 0.002 * z[5])).astype(np.int64)
    run = _running(carry, present, sizes, starts, first_day, trade, tp, inc, t_ltq, sec + t_open)
    carry.seen[present] = True
    # global order: by second, then a seeded shuffle across symbols; a symbol's own ticks keep their order
    keys = interleave.random(N)        # drawn window by window in the drawing layout (a window's draws follow)
    emit = np.arange(N) if n == 1 else _emission(keys, sec_w, row_w, b0, width, n_win, n)
    if perm is not None:
        inv = np.empty(N, dtype=np.int64)
        inv[perm] = np.arange(N)
        emit = inv[emit]
    ltp_e, se = run["ltp"][emit], row[emit]
    pc_e = prev_arr[se]
    ch = (ltp_e - pc_e) / 100.0
    chp = _round4(ch / (prev_arr / 100.0)[se] * 100)
    columns = [
        ltp_e / 100.0, run["vol"][emit], run["ltt"][emit], sec[emit] + t_open, bs[emit], as_[emit],
        bid[emit] / 100.0, ask[emit] / 100.0, run["ltq"][emit], tb[emit], ts[emit], run["avg"][emit] / 100.0,
        run["low"][emit] / 100.0, run["high"][emit] / 100.0, run["open"][emit] / 100.0, pc_e / 100.0,
        names_arr[se], ch, chp, se]
    return columns, group.sum(axis=1)


def _emission(keys: np.ndarray, sec: np.ndarray, row: np.ndarray, b0: int, width: int, n_win: int,
              n: int) -> np.ndarray:
    """The drawing layout's index of each tick in emission order: by second, then by its key; a symbol's own
    ticks keep their order within each window (its slots are filled with its ticks in time order)."""
    N = keys.shape[0]
    order = np.lexsort((keys, sec))
    slot = ((sec[order] - b0) // width) * n + row[order]
    pos = np.argsort(slot.astype(np.uint16) if n_win * n <= 1 << 16 else slot, kind="stable")
    emit = np.empty(N, dtype=np.int64)
    emit[pos] = np.arange(N)
    return emit


def _running(carry: _Carry, present: np.ndarray, sizes: np.ndarray, starts: np.ndarray, first_day: np.ndarray,
             trade: np.ndarray, tp: np.ndarray, inc: np.ndarray, t_ltq: np.ndarray,
             when: np.ndarray) -> dict[str, np.ndarray]:
    """Each tick's running state (volume, VWAP, day high/low, open, last trade) for the present symbols' ticks
    (laid out symbol by symbol, in time), and the carried state updated to each symbol's last tick."""
    N = tp.shape[0]
    ends = starts + sizes - 1
    c = {k: v[present] for k, v in carry.ints.items()}
    rep = lambda a: np.repeat(a, sizes)  # noqa: E731
    qty = np.where(trade, inc, 0)
    vol = rep(c["vol"]) + _group_cumsum(qty, starts, sizes)
    pq = rep(c["pq"]) + _group_cumsum(qty * tp, starts, sizes)
    last = np.maximum.accumulate(np.where(trade, np.arange(N), -1))
    has = last >= rep(starts)
    last_c = np.maximum(last, 0)
    ltp = np.where(has, tp[last_c], rep(c["ltp"]))
    ltt = np.where(has, when[last_c], rep(c["ltt"]))
    ltq = np.where(has, t_ltq[last_c], rep(c["ltq"]))
    off = rep(np.arange(sizes.shape[0], dtype=np.int64) * _BIG)
    high = np.maximum.accumulate(ltp + off) - off
    low = off - np.maximum.accumulate(off - ltp)
    first = rep(first_day)
    high = np.where(first, high, np.maximum(high, rep(c["high"])))
    low = np.where(first, low, np.minimum(low, rep(c["low"])))
    opn = np.where(first, tp[starts].repeat(sizes), rep(c["open"]))
    out = {"ltp": ltp, "ltt": ltt, "ltq": ltq, "vol": vol, "pq": pq, "high": high, "low": low, "open": opn}
    for k, arr in out.items():
        carry.ints[k][present] = arr[ends]
    out["avg"] = np.rint(pq / vol).astype(np.int64)
    return out


def default_tickers(n: int) -> list[str]:
    """`n` made-up but well-formed Fyers tickers (NSE:SYM001-EQ ...) for benchmarks and tests."""
    return [f"NSE:SYM{i:03d}-EQ" for i in range(n)]


__all__ = ["generate_day", "SyntheticDay", "day_columns", "base_price", "default_tickers", "TICK_PAISE"]
