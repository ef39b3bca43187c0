"""Crash-safety soak: the loop of tests/test_crash_safety.py (tests/crash_harness.py), run longer; prints ONE
JSON line.

    .venv/bin/python bench/soak.py --kills 50          # 50 SIGKILLs (random moments and crash points)
    .venv/bin/python bench/soak.py --minutes 30        # as many as fit in 30 minutes

The real daemon replays the short test day against a real paper broker and is killed with SIGKILL at random
moments and at the DAEMON_CRASH_AT crash points, restarted, and finally left alone to finish the day; then
the broker's books and the database must agree (no duplicate order per signal, DB positions = broker
positions, fills and capital reconcile). Rounds of --per-round kills, each on a fresh database and broker.
Exit status 0 when every round finished with every invariant holding, else 1 (the errors are in the line).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.crash_harness import crash_loop  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--kills", type=int, help="stop after this many SIGKILLs")
    g.add_argument("--minutes", type=float, help="stop after this many minutes of wall time")
    p.add_argument("--seed", type=int, default=20261121, help="random kill moments and crash points")
    p.add_argument("--per-round", type=int, default=10, help="kills per replayed day (default 10)")
    p.add_argument("--workdir", type=Path, help="keep the databases and logs here (default: a temporary folder)")
    p.add_argument("--verbose", action="store_true", help="one line per kill on stderr")
    a = p.parse_args(argv)
    if (a.kills is not None and a.kills < 1) or (a.minutes is not None and a.minutes <= 0) or a.per_round < 1:
        p.error("--kills, --minutes and --per-round must be positive")

    def say(s: str) -> None:
        if a.verbose:
            print(s, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = a.workdir or Path(tmp)
        res = crash_loop(workdir, kills=a.kills, minutes=a.minutes, seed=a.seed, per_round=a.per_round, say=say)
    for e in res.errors:
        print(e, file=sys.stderr)
    line = res.summary()
    line["errors"] = [e.splitlines()[0] for e in res.errors]
    print(json.dumps(line))
    return 0 if not res.errors and res.kills_survived == res.kills else 1


if __name__ == "__main__":
    sys.exit(main())
