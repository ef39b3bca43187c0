"""--replay input is checked before anything starts (issue #13, items 1-4): the real driver.py refuses an empty,
junk or mostly malformed file, a file for other symbols or another day, and a speed that is not a positive
finite number, with exit 2 and one line, before it opens the database or would need the broker; a recorded
day replays as its own day; a refused run, or a replay that delivered no tick, leaves an earlier report alone."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import date
from datetime import time as dtime
from pathlib import Path

import pytest
import yaml

from core.clock import ist_epoch
from core.config import load_config
from feeds.recorded import TICK_FIELDS, write_ticks
from feeds.synthetic import generate_day
from tests.daemon_harness import DAY, ROOT, daemon_env, rows, short_day_config

# nothing listens there: a refused input must be refused before the broker would be needed
DEAD = {"HOST_SERVER": "http://127.0.0.1:9", "APP_KEY": "0" * 64}
OTHER_DAY = "2026-11-19"


def _ticks(cfg_path: Path, day: str = DAY, symbols: list[str] | None = None, start: str = "10:00") -> list[dict]:
    """A synthetic day for the test config's symbols (Fyers names), from `start` IST, as a recording holds."""
    cfg = load_config(cfg_path)
    names = symbols or [s.fyers for s in cfg.symbols]
    hh, mm = (int(x) for x in start.split(":"))
    after = ist_epoch(date.fromisoformat(day), dtime(hh, mm)) - 1
    return list(generate_day(names, date.fromisoformat(day), 7, cfg.session, start_after=after))


def _driver(tmp: Path, cfg: Path, args: list[str], db: str = "run.sqlite",
            timeout: float = 120) -> subprocess.CompletedProcess:
    """driver.py with exactly `args` (no --date unless given)."""
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), *args], capture_output=True,
                          text=True, env=daemon_env(f"sqlite:///{tmp / db}", DEAD), cwd=ROOT, timeout=timeout)


def _refused(p: subprocess.CompletedProcess, tmp: Path, *names: str) -> str:
    """Exit 2, one line naming each of `names`, no traceback, and nothing started (no database, no broker
    state, no report)."""
    out = p.stdout + p.stderr
    assert p.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    for n in names:
        assert n in lines[0], (n, lines[0])
    assert not (tmp / "run.sqlite").exists() and not (tmp / "paper.sqlite").exists()
    return lines[0]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """Paper mode with no broker on HOST_SERVER: what is refused at input never gets as far as needing one."""
    return short_day_config(tmp_path, mode="paper")


@pytest.fixture
def run_cfg(tmp_path: Path) -> Path:
    """For the runs that go ahead: signals only, so no broker is started."""
    (tmp_path / "run").mkdir()
    return short_day_config(tmp_path / "run", mode="signals_only")


@pytest.fixture
def day_file(tmp_path: Path, cfg: Path) -> Path:
    path = tmp_path / "day.csv.gz"
    write_ticks(path, _ticks(cfg, start="09:15"))  # the whole (90-minute) day
    return path


def _with_bad_lines(src: Path, dst: Path, every: int) -> tuple[int, int, int]:
    """A copy of `src` with every `every`-th data line cut short; (bad lines, good lines, first bad line)."""
    lines = gzip.open(src, "rt").read().splitlines()
    out, bad, first = [lines[0]], 0, 0
    for i, ln in enumerate(lines[1:], 2):
        if i % every == 0:
            ln = ln.rsplit(",", 3)[0]
            bad += 1
            first = first or i
        out.append(ln)
    dst.write_text("\n".join(out) + "\n")
    return bad, len(lines) - 1 - bad, first


# ------------------------------------------------------------------ no usable tick: refused before start-up

@pytest.mark.parametrize("name, content, shown", [
    ("empty.csv", b"", "holds no tick"),
    ("header.csv", (",".join(TICK_FIELDS) + "\n").encode(), "holds no tick"),
    ("junk.csv", os.urandom(200_000), "line 1"),
    ("junk.jsonl", b"\x00\xff garbage\n" + os.urandom(50_000) + b"\n", "first bad line"),
    ("junk.csv.gz", os.urandom(50_000), "line 1"),
    ("junk.bin", os.urandom(50_000), "is not allowed"),
])
def test_a_file_without_a_valid_tick_is_refused_naming_it(tmp_path, cfg, name, content, shown):
    path = tmp_path / name
    path.write_bytes(content)
    _refused(_driver(tmp_path, cfg, ["--replay", str(path)]), tmp_path, name, shown)
    assert not (tmp_path / "reports").exists()


def test_a_bad_file_named_in_config_is_refused_naming_the_key(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cfg = short_day_config(tmp_path, mode="paper", replay={"source": str(empty)})
    _refused(_driver(tmp_path, cfg, []), tmp_path, "replay.source:", "empty.csv", "holds no tick")


def test_a_share_of_bad_lines_above_the_threshold_is_refused_naming_the_first(tmp_path, cfg, day_file):
    bad_file = tmp_path / "bad.csv"
    bad, good, first = _with_bad_lines(day_file, bad_file, every=40)  # 2.5% > the default 1%
    line = _refused(_driver(tmp_path, cfg, ["--replay", str(bad_file)]), tmp_path, "bad.csv",
                    "replay.max_bad_row_share (0.01)", f"line {first}:")
    assert f"{bad} malformed line(s) in {bad + good}" in line


def test_a_share_of_bad_lines_within_the_threshold_runs_and_counts_them(tmp_path, cfg, run_cfg, day_file):
    bad_file = tmp_path / "bad.csv"
    bad, good, first = _with_bad_lines(day_file, bad_file, every=400)  # 0.25%
    p = _driver(tmp_path / "run", run_cfg, ["--replay", str(bad_file), "--start", "10:25"])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert f"{bad} malformed line(s) of {bad + good} skipped" in out and f"line {first}:" in out
    assert (tmp_path / "run" / "reports" / DAY / "summary.json").exists()
    raw = yaml.safe_load(cfg.read_text())
    raw["replay"]["max_bad_row_share"] = 0.001  # the threshold is the config's: tighter, the file is refused
    cfg.write_text(yaml.safe_dump(raw))
    _refused(_driver(tmp_path, cfg, ["--replay", str(bad_file)]), tmp_path, "replay.max_bad_row_share (0.001)")


def test_the_threshold_is_a_validated_config_key(tmp_path):
    cfg = short_day_config(tmp_path, mode="paper", replay={"max_bad_row_share": 1.5})
    p = _driver(tmp_path, cfg, ["--replay", "synthetic"])
    assert p.returncode == 2 and "replay.max_bad_row_share: 1.5 is not allowed" in p.stderr, p.stderr


# ------------------------------------------------------------------ the trading day is the file's

def test_a_date_that_disagrees_with_the_file_is_refused_naming_both(tmp_path, cfg, day_file):
    _refused(_driver(tmp_path, cfg, ["--replay", str(day_file), "--date", OTHER_DAY]), tmp_path,
             OTHER_DAY, DAY, "day.csv.gz")


def test_a_file_spanning_two_ist_dates_is_refused_naming_both(tmp_path, cfg):
    path = tmp_path / "two.csv"
    write_ticks(path, _ticks(cfg, OTHER_DAY, start="10:40") + _ticks(cfg, DAY, start="10:40"))
    _refused(_driver(tmp_path, cfg, ["--replay", str(path)]), tmp_path, "two.csv", OTHER_DAY, DAY)


def test_without_date_the_file_replays_as_its_own_day(tmp_path, run_cfg, day_file):
    p = _driver(tmp_path / "run", run_cfg, ["--replay", str(day_file)])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert f"for {DAY} (IST)" in out  # the pre-scan says which day it found
    assert [d.name for d in (tmp_path / "run" / "reports").iterdir()] == [DAY]
    summary = json.loads((tmp_path / "run" / "reports" / DAY / "summary.json").read_text())
    assert summary["ticks"]["dispatched"] > 40_000
    db = f"sqlite:///{tmp_path / 'run' / 'run.sqlite'}"
    outcomes = [o for (o,) in rows(db, "SELECT outcome FROM stock_signals")]
    executed = [o for o in outcomes if (o or "").startswith("executed")]
    assert len(executed) > 3, outcomes
    assert not any("SESSION_NO_ENTRIES" in (o or "") for o in outcomes), outcomes  # none outside the session


# ------------------------------------------------------------------ symbols the config does not trade

def test_a_file_of_unknown_symbols_only_is_refused_naming_them(tmp_path, cfg):
    path = tmp_path / "other.csv"
    write_ticks(path, _ticks(cfg, symbols=["NSE:ACC-EQ", "NSE:BEL-EQ"], start="10:40"))
    line = _refused(_driver(tmp_path, cfg, ["--replay", str(path)]), tmp_path, "other.csv", "NSE:ACC-EQ",
                    "NSE:BEL-EQ")
    assert "symbols" in line


def test_unknown_symbols_beside_known_ones_are_counted_by_symbol_and_warned(tmp_path, cfg, run_cfg):
    known = _ticks(cfg, start="10:38")
    other = _ticks(cfg, symbols=["NSE:ACC-EQ"], start="10:38")
    path = tmp_path / "mixed.jsonl"
    write_ticks(path, sorted(known + other, key=lambda t: t["exch_feed_time"]))
    p = _driver(tmp_path / "run", run_cfg, ["--replay", str(path), "--start", "10:38"])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert f"{len(other)} tick(s) of 1 symbol(s) not in the config are not routed: NSE:ACC-EQ {len(other)}" in out
    assert f" {len(known)} ticks dispatched" in out and f", {len(other)} in the file for symbols not in" in out
    summary = json.loads((tmp_path / "run" / "reports" / DAY / "summary.json").read_text())
    assert summary["ticks"]["not_in_config"] == {"NSE:ACC-EQ": len(other)}


# ------------------------------------------------------------------ --speed

@pytest.mark.parametrize("speed", ["nan", "inf", "-inf", "-1", "0", "fast"])
def test_a_speed_that_is_not_a_positive_finite_number_is_refused(tmp_path, cfg, speed):
    _refused(_driver(tmp_path, cfg, [f"--speed={speed}", "--date", DAY]), tmp_path, "--speed", repr(speed))


def test_a_config_speed_of_nan_is_refused(tmp_path):
    cfg = short_day_config(tmp_path, mode="paper", replay={"speed": "nan"})
    p = _driver(tmp_path, cfg, ["--date", DAY])
    assert p.returncode == 2 and "replay.speed: 'nan' is not allowed" in p.stderr, p.stderr


# ------------------------------------------------------------------ an earlier report is never replaced

def _earlier_report(tmp: Path) -> tuple[Path, str]:
    out = tmp / "reports" / DAY
    out.mkdir(parents=True)
    text = json.dumps({"day": DAY, "trades": 7, "note": "an earlier run"})
    (out / "summary.json").write_text(text)
    return out / "summary.json", text


def test_a_refused_run_leaves_the_days_report_alone(tmp_path, cfg):
    summary, text = _earlier_report(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(TICK_FIELDS) + "\n")
    _refused(_driver(tmp_path, cfg, ["--replay", str(empty), "--date", DAY]), tmp_path, "empty.csv")
    assert summary.read_text() == text and sorted(p.name for p in summary.parent.iterdir()) == ["summary.json"]


def test_a_replay_that_delivered_no_tick_keeps_the_earlier_report(tmp_path, cfg, run_cfg):
    summary, text = _earlier_report(tmp_path / "run")
    ticks = _ticks(cfg, start="10:40")
    for t in ticks:  # every price ten times its prev close: the feed's validator refuses each one
        t["ltp"] = t["bid_price"] = t["ask_price"] = t["prev_close_price"] * 10
    path = tmp_path / "out_of_range.csv"
    write_ticks(path, ticks)
    p = _driver(tmp_path / "run", run_cfg, ["--replay", str(path)])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert " 0 ticks dispatched" in out and "report of an earlier run" in out and "is kept" in out
    assert summary.read_text() == text
