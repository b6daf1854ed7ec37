#!/usr/bin/env bash
# Prepare this checkout to run handmesh: system libraries, a virtual environment in .venv,
# and `pip install -e ".[test]"` (or only the runtime with --runtime-only).
#
# Idempotent: apt runs only when a system package is missing, and pip runs only when
# pyproject.toml changed since the last successful install (hash kept in .venv), so a
# second run takes seconds and needs no network.
#
# Usage: bash scripts/setup_env.sh [--runtime-only] [--force]
# Environment: PYTHON=/path/to/python3.11   pick the interpreter (default: python3, python3.11)
#              HANDMESH_VENV=/path/to/venv  use another venv location (default: <repo>/.venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=test
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --runtime-only) MODE=runtime ;;
        --force) FORCE=1 ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
        *) echo "setup_env: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

VENV="${HANDMESH_VENV:-$ROOT/.venv}"
STAMP="$VENV/.handmesh-install-stamp"
SYS_PKGS=(libusb-1.0-0 xvfb xdotool libgl1 libegl1 libgomp1 mono-mcs mono-runtime chromium godot3-server nodejs)
# xdotool: the window tests; mono-mcs + mono-runtime: compile and run the Unity C# script;
# chromium: the browser viewer's test and benchmark (headless, software GL); godot3-server: the
# Godot client's test; nodejs: the viewer's JavaScript decoder test

say() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

# --- 1. system packages -------------------------------------------------------------------
missing=()
for p in "${SYS_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "system packages: all present (${SYS_PKGS[*]})"
elif ! command -v apt-get >/dev/null 2>&1; then
    say "WARNING: not a Debian/Ubuntu system; install the equivalents of: ${missing[*]}"
else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 \
            || die "missing system packages (${missing[*]}) and no sudo; as root run: apt-get update && apt-get install -y ${missing[*]}"
        SUDO=(sudo)
    fi
    say "system packages: installing ${missing[*]} (apt-get update + install)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq >/dev/null \
        || die "apt-get update failed (network to the Debian mirrors?)"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    say "system packages: installed ${missing[*]}"
fi

# --- 2. Python interpreter and venv --------------------------------------------------------
py_ok() {  # $1: interpreter; true if it is CPython 3.11 or 3.12
    "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' \
        2>/dev/null
}
py_ver() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo "?"; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
    py_ok "$VENV/bin/python" \
        || die "$VENV uses Python $(py_ver "$VENV/bin/python"); handmesh needs 3.11 or 3.12. Remove $VENV and run again."
    say "venv: $VENV exists (Python $(py_ver "$VENV/bin/python"))"
else
    PY=""
    if [ -n "${PYTHON:-}" ]; then
        py_ok "$PYTHON" || die "PYTHON=$PYTHON is Python $(py_ver "$PYTHON"); handmesh needs 3.11 or 3.12."
        PY="$PYTHON"
    fi
    for cand in python3 python3.11 python3.12; do
        [ -z "$PY" ] || break
        if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then PY="$cand"; fi
    done
    if [ -z "$PY" ]; then
        found="$(command -v python3 >/dev/null 2>&1 && py_ver python3 || echo none)"
        die "need Python 3.11 or 3.12 (python3 is $found). Install one (e.g. pyenv install 3.11) or set PYTHON=/path/to/python3.11."
    fi
    [ -e "$VENV" ] && { say "venv: $VENV is broken, recreating"; rm -rf "$VENV"; }
    say "venv: creating $VENV with $PY (Python $(py_ver "$PY"))"
    "$PY" -m venv "$VENV" \
        || die "'$PY -m venv' failed (on Debian's own python3: apt-get install python3-venv)"
fi
VPY="$VENV/bin/python"

# --- 3. pip install, only when pyproject.toml changed ----------------------------------------
HASH="$(sha256sum pyproject.toml | cut -d' ' -f1)"
want_ok() {  # is the stamp's install at least what we want now? (test includes runtime)
    [ -f "$STAMP" ] || return 1
    read -r s_hash s_mode < "$STAMP" || return 1
    [ "$s_hash" = "$HASH" ] || return 1
    [ "$MODE" = runtime ] || [ "$s_mode" = test ] || return 1
    "$VPY" -c 'import importlib.metadata as m; m.version("handmesh")' 2>/dev/null
}
if [ "$FORCE" -eq 0 ] && want_ok; then
    say "python packages: up to date (pyproject.toml unchanged since the last install)"
else
    for pkg in models realtime calibration; do
        [ -f "$pkg/__init__.py" ] || say "WARNING: $pkg/__init__.py missing; the package will not be installed"
    done
    if [ "$MODE" = test ]; then TARGET=".[test]"; else TARGET="."; fi
    say "python packages: pip install -e \"$TARGET\" (several minutes on a fresh venv)"
    rm -f "$STAMP"
    t0=$SECONDS
    # -q hides progress but pip still prints warnings and errors.
    "$VPY" -m pip install -q --progress-bar off -e "$TARGET" \
        || die "pip install -e \"$TARGET\" failed (see the errors above)"
    echo "$HASH $MODE" > "$STAMP"
    say "python packages: installed in $((SECONDS - t0)) s"
fi
# ai-edge-litert (pyproject) runs the hand models of our default detector (--detector ours).
"$VPY" -c 'import ai_edge_litert.interpreter' 2>/dev/null \
    || say "WARNING: ai-edge-litert does not import: the demo needs --detector mediapipe here"
say "ready: $VPY"
