#!/usr/bin/env bash
# Installs what Quai needs on a fresh Debian 12 machine: a virtualenv from the hashed lock, and Debian's
# Chromium for the browser tests. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "Quai needs Python 3.11 (Debian 12's python3); found $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi

stamp=.venv/.lock-installed
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    [ "$(id -u)" = 0 ] && { apt-get update -qq && apt-get install -y -qq python3-venv; } || true
    "$PYTHON" -m venv .venv
  fi
fi
if [ ! -f "$stamp" ] || [ requirements/lock.txt -nt "$stamp" ]; then
  echo "==> installing Python packages from requirements/lock.txt (hashes checked)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r requirements/lock.txt
  touch "$stamp"
fi

if [ "${QUAI_SKIP_BROWSER:-}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian's Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "!! /usr/bin/chromium is missing: 'apt-get install chromium' as root, or the browser tests will be skipped" >&2
  fi
fi

# wrk drives the intake benchmark (`make bench`): an HTTP load tool in C, so the load does not eat the CPU it measures.
if [ "${QUAI_SKIP_BENCH_TOOLS:-}" != "1" ] && ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian's wrk for the intake benchmark"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "!! wrk is missing: 'apt-get install wrk' as root, or the intake benchmark cannot run" >&2
  fi
fi
