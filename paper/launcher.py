"""Start the paper broker as a separate process, detached if asked, so it outlives whoever started it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paper.client import PaperBrokerAdmin, PaperBrokerError
from paper.instance import holder

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "paper_broker.py"
DEFAULT_STATE = "data/paper_broker.sqlite"  # paper_broker.py's default, relative to the project


def start_broker(port: int, *, host: str = "127.0.0.1", state_file: Path | str | None = None,
                 api_key: str | None = None, args: Sequence[str] = (), detached: bool = False,
                 log_file: Path | str | None = None, python: str = sys.executable) -> subprocess.Popen:
    """Spawn `paper_broker.py`. The key goes through the environment (APP_KEY), never the command line.

    detached=True starts a new session (setsid) so a crash or Ctrl-C of the parent does not reach it.
    Output goes to `log_file` (appended) or is discarded; the broker's own log is its record.
    """
    cmd = [python, str(SCRIPT), "--host", host, "--port", str(port)]
    if state_file is not None:
        cmd += ["--state-file", str(state_file)]
    cmd += list(args)
    env = dict(os.environ)
    if api_key is not None:
        env["APP_KEY"] = api_key
    out = open(log_file, "ab") if log_file is not None else subprocess.DEVNULL  # noqa: SIM115 - child keeps it
    try:
        return subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=detached)
    finally:
        if log_file is not None:
            out.close()


def wait_ready(proc: subprocess.Popen, admin: PaperBrokerAdmin, timeout_s: float = 15.0) -> dict:
    """Health of the started broker, or PaperBrokerError with its exit code if it died first (naming the
    broker already running on the same state file when that is why)."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        if code is not None:
            running = holder(_state_file_of(proc)) if code == 2 else None
            raise PaperBrokerError(f"paper broker exited with code {code} before becoming healthy"
                                   + (f": {running}" if running else ""))
        try:
            return admin.health()
        except PaperBrokerError:
            if time.monotonic() > deadline:
                raise PaperBrokerError(f"paper broker not healthy after {timeout_s:.1f}s") from None
            time.sleep(0.05)


def _state_file_of(proc: subprocess.Popen) -> Path:
    """The state file a broker started by start_broker was given (its command line), as an absolute path."""
    args = list(proc.args) if isinstance(proc.args, (list, tuple)) else []
    at = [i for i, a in enumerate(args[:-1]) if a == "--state-file"]  # argparse takes the last one
    name = args[at[-1] + 1] if at else DEFAULT_STATE
    p = Path(str(name))
    return p if p.is_absolute() else ROOT / p
