#!/usr/bin/env bash
# Set up everything depth_nodes needs on a fresh machine; safe to re-run.
#   1. Debian packages (libosmesa6 for headless MuJoCo rendering) when running as root,
#      otherwise a message naming the apt command.
#   2. A Python 3.11 virtualenv in .venv with the pinned packages of requirements.txt.
#   3. depth_nodes itself, installed editable into .venv (console scripts in .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PYTHON=${PYTHON:-python3.11}
DEBS="libosmesa6"

missing=""
for pkg in $DEBS; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "[setup] installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q $missing >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
  else
    echo "[setup] missing Debian packages:$missing" >&2
    echo "[setup] install them with: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "[setup] $PYTHON not found; depth_nodes needs Python 3.11 (ROS 2 Kilted wheels)." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed"
want=$(cat requirements.txt requirements-nodeps.txt setup.py setup.cfg | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] installing pinned Python packages into $VENV (first run takes a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade "pip==26.3" "setuptools==84.2.1" wheel
"$VENV/bin/python" -m pip install -q -r requirements.txt
"$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "[setup] done: $VENV"
