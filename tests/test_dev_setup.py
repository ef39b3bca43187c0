""".env editing (core.env_file) and `./dev.sh setup`: a blank APP_KEY gets a random key, whether .env is new
or already there, and nothing else in the file changes. The dev.sh test runs the real script in a copy of the
project's set-up files whose .venv points at this interpreter (requirements marked as installed, so nothing
is installed)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import pytest
from dotenv import dotenv_values

from core.env_file import fill_app_key, read_value, set_value

ROOT = Path(__file__).resolve().parent.parent


def test_set_value_keeps_every_other_line_and_the_comment(tmp_path):
    p = tmp_path / ".env"
    p.write_text("# top\nAPP_KEY=abc\n\nFYERS_ACCESS_TOKEN=      # today's token\nexport OTHER='q v'  # c\nLAST=1")
    p.chmod(0o644)
    set_value(p, "FYERS_ACCESS_TOKEN", "eyJ.a.b")
    set_value(p, "NEW", "x")
    assert p.read_text() == ("# top\nAPP_KEY=abc\n\nFYERS_ACCESS_TOKEN=eyJ.a.b      # today's token\n"
                             "export OTHER='q v'  # c\nLAST=1\nNEW=x\n")
    assert dotenv_values(p)["FYERS_ACCESS_TOKEN"] == "eyJ.a.b" and dotenv_values(p)["OTHER"] == "q v"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert read_value(p, "FYERS_ACCESS_TOKEN") == "eyJ.a.b" and read_value(p, "OTHER") == "q v"
    assert read_value(p, "MISSING") is None
    with pytest.raises(ValueError):
        set_value(p, "K", "two\nlines")


@pytest.mark.parametrize("line", ["APP_KEY=", "APP_KEY=   ", "APP_KEY=  # the key", "APP_KEY=''", None])
def test_fill_app_key_fills_a_blank_or_missing_key_only(tmp_path, line):
    p = tmp_path / ".env"
    p.write_text("HOST_SERVER=http://127.0.0.1:5000\n" + (line + "\n" if line is not None else ""))
    assert fill_app_key(p) is True
    key = dotenv_values(p)["APP_KEY"]
    assert key and len(key) == 64 and int(key, 16) >= 0
    assert dotenv_values(p)["HOST_SERVER"] == "http://127.0.0.1:5000"
    assert fill_app_key(p) is False and dotenv_values(p)["APP_KEY"] == key  # never replaced


def project_copy(tmp: Path) -> Path:
    """dev.sh with what its set-up reads, and a .venv whose requirements count as installed."""
    root = tmp / "proj"
    (root / "core").mkdir(parents=True)
    for f in ("dev.sh", ".env.example", "requirements.txt", "core/__init__.py", "core/env_file.py"):
        shutil.copy2(ROOT / f, root / f)
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    (root / ".venv" / ".requirements.sha").write_text(sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
                                                      + "\n")
    return root


def setup(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "dev.sh"), "setup"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k not in ("APP_KEY", "DASHBOARD_TOKEN")})


def test_dev_sh_setup_fills_a_blank_app_key_in_an_existing_env(tmp_path):
    root = project_copy(tmp_path)
    env = root / ".env"
    env.write_text("# mine\nAPP_KEY=\nHOST_SERVER=http://127.0.0.1:5123\nLIVE_DATA=false\n")
    run = setup(root)
    assert run.returncode == 0, run.stderr
    key = dotenv_values(env)["APP_KEY"]
    assert key and len(key) == 64
    token = dotenv_values(env)["DASHBOARD_TOKEN"]  # an existing .env that lacks it gets one too
    assert token and len(token) >= 40
    assert env.read_text() == (f"# mine\nAPP_KEY={key}\nHOST_SERVER=http://127.0.0.1:5123\nLIVE_DATA=false\n"
                               f"DASHBOARD_TOKEN={token}\n")
    assert "wrote a new random APP_KEY" in run.stderr and key not in run.stdout + run.stderr
    assert "wrote a new random DASHBOARD_TOKEN" in run.stderr and token not in run.stdout + run.stderr
    assert setup(root).returncode == 0  # idempotent
    assert dotenv_values(env)["APP_KEY"] == key and dotenv_values(env)["DASHBOARD_TOKEN"] == token


def test_dev_sh_setup_writes_a_new_env_with_a_key(tmp_path):
    root = project_copy(tmp_path)
    run = setup(root)
    assert run.returncode == 0, run.stderr
    env = root / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    vals = dotenv_values(env)
    assert vals["APP_KEY"] and len(vals["APP_KEY"]) == 64
    example = (ROOT / ".env.example").read_text()
    assert vals["DASHBOARD_TOKEN"] and len(vals["DASHBOARD_TOKEN"]) >= 40
    assert env.read_text() == example.replace("APP_KEY=\n", f"APP_KEY={vals['APP_KEY']}\n").replace(
        "DASHBOARD_TOKEN=\n", f"DASHBOARD_TOKEN={vals['DASHBOARD_TOKEN']}\n")
    assert (root / "data").is_dir() and (root / "logs").is_dir()
