"""Edit one key of `.env` in place: the other lines and comments stay, the file stays private (mode 600).

Why a module of its own: `./dev.sh setup` fills a blank `APP_KEY` with it and `driver.py fyers-login` writes
the day's Fyers token with it, and neither may lose what the user wrote in the file. Standard library only, so
dev.sh can run it before anything else is known to work. Values written here are secrets: never printed.

    python -m core.env_file fill-app-key .env    # a random APP_KEY if the line is missing or blank
    python -m core.env_file fill-dashboard-token .env    # the same for DASHBOARD_TOKEN (the dashboard's key)
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
from pathlib import Path

_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=)(.*)$")


def _split_value(rest: str) -> tuple[str, str]:
    """(value, trailing comment with its spacing) of an unquoted or quoted value, as python-dotenv reads it."""
    rest = rest.rstrip("\n")
    body = rest.lstrip()
    if body.startswith("#"):  # `KEY=   # comment`: an empty value
        return "", rest
    if body[:1] in ("'", '"'):
        end = body.find(body[0], 1)
        if end > 0:
            return body[1:end], body[end + 1:]
        return body, ""
    m = re.search(r"\s+#", body)
    if m:
        return body[:m.start()].strip(), body[m.start():]
    return body.strip(), ""


def read_value(path: Path, key: str) -> str | None:
    """The value of `key` in the file (None if there is no such line)."""
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _LINE.match(line)
        if m and m.group(2) == key:
            return _split_value(m.group(4))[0]
    return None


def set_value(path: Path, key: str, value: str) -> None:
    """Write `key=value` into the file: replace the key's line (keeping its trailing comment), or append one.
    The file is replaced atomically and left with mode 600."""
    if any(c in value for c in "\n\r") or (value and (value != value.strip() or "#" in value or "'" in value
                                                       or '"' in value)):
        raise ValueError(f"{key}: the value has characters a .env line cannot hold as written")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    done = False
    for i, line in enumerate(lines):
        m = _LINE.match(line.rstrip("\n"))
        if m and m.group(2) == key and not done:
            _, comment = _split_value(m.group(4))
            lines[i] = f"{m.group(1)}{key}={value}{comment}\n"
            done = True
    if not done:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{key}={value}\n")
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def fill_app_key(path: Path) -> bool:
    """Give a blank or missing APP_KEY a fresh random key (the paper broker accepts exactly it); True if written.
    A key already there is never replaced: a running paper broker was started with it."""
    if read_value(path, "APP_KEY"):
        return False
    set_value(path, "APP_KEY", secrets.token_hex(32))
    return True


def fill_dashboard_token(path: Path) -> bool:
    """Give a blank or missing DASHBOARD_TOKEN a fresh random token; True if written. One already there stays
    (a browser holds it as a cookie)."""
    if read_value(path, "DASHBOARD_TOKEN"):
        return False
    set_value(path, "DASHBOARD_TOKEN", secrets.token_urlsafe(32))
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("fill-app-key", "fill-dashboard-token"):
        print("usage: python -m core.env_file fill-app-key|fill-dashboard-token PATH", file=sys.stderr)
        return 2
    path = Path(args[1])
    if args[0] == "fill-app-key" and fill_app_key(path):
        print(f"dev.sh: wrote a new random APP_KEY for the paper broker into {path}", file=sys.stderr)
    if args[0] == "fill-dashboard-token" and fill_dashboard_token(path):
        print(f"dev.sh: wrote a new random DASHBOARD_TOKEN for the dashboard into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
