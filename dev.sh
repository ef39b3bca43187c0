#!/usr/bin/env bash
# The project's two entry points (see README):
#   ./dev.sh run  [driver.py args]   set everything up, then run the daemon on its defaults
#   ./dev.sh test [pytest args]      set everything up, then run the whole test suite
# Set-up is idempotent: a virtual environment in .venv with requirements.txt, a .env with a fresh
# random APP_KEY for the paper broker where APP_KEY is missing or blank, and the data/ and logs/ folders.
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
  for p in python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
      echo "$p"; return 0
    fi
  done
  echo "dev.sh: Python 3.11 or newer is needed (python3.11 not found)" >&2
  exit 1
}

setup() {
  local py; py=$(find_python)
  if [ ! -x .venv/bin/python ]; then
    echo "dev.sh: creating .venv with $py" >&2
    "$py" -m venv .venv
  fi
  local want; want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat .venv/.requirements.sha 2>/dev/null || true)" != "$want" ]; then
    echo "dev.sh: installing requirements.txt into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=23"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
    echo "$want" > .venv/.requirements.sha
  fi
  if [ ! -f .env ]; then
    (umask 077 && cp .env.example .env)
    echo "dev.sh: wrote .env from .env.example" >&2
  fi
  .venv/bin/python -m core.env_file fill-app-key .env  # a blank APP_KEY gets a random key, an existing one stays
  .venv/bin/python -m core.env_file fill-dashboard-token .env  # likewise DASHBOARD_TOKEN, the dashboard's key
  mkdir -p data logs
}

ensure_postgres_tools() {
  # The PostgreSQL tests start a throwaway server of their own; they need the server binaries.
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing PostgreSQL (Debian package postgresql) for the database tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
      || echo "dev.sh: could not install PostgreSQL; its tests will be skipped" >&2
  fi
}

ensure_browser() {
  # The dashboard's browser test drives Debian's chromium (Playwright's own download cannot be fetched here).
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing chromium (Debian package) for the dashboard's browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "dev.sh: could not install chromium; the browser test will be skipped" >&2
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  run)   setup; exec .venv/bin/python driver.py "$@" ;;
  test)  setup; [ -n "${TEST_DATABASE_URL:-}" ] || ensure_postgres_tools; ensure_browser; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./dev.sh run [driver args] | ./dev.sh test [pytest args] | ./dev.sh setup" >&2; exit 2 ;;
esac
