#!/usr/bin/env bash
# Run the test suite: prepares the environment (runtime + pytest + torch) on the first run,
# starts a virtual X server (Xvfb :99) when there is no DISPLAY, then runs pytest with all
# arguments passed through. Exits with pytest's exit code (5 = no tests collected).
#
# Usage: bash scripts/test.sh [pytest arguments...]     e.g. -m slow, -k skinning, -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh

XVFB_PID=""
cleanup() {
    if [ -n "$XVFB_PID" ]; then
        kill "$XVFB_PID" 2>/dev/null || true
        wait "$XVFB_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${DISPLAY:-}" ]; then
    xvfb_alive() {  # an X server holds :99 (lock file with a live pid)
        [ -f /tmp/.X99-lock ] && kill -0 "$(tr -d ' ' < /tmp/.X99-lock)" 2>/dev/null
    }
    if xvfb_alive; then
        echo "[test] reusing the X server already running on :99"
    else
        command -v Xvfb >/dev/null 2>&1 || { echo "[test] ERROR: Xvfb not found (apt-get install xvfb)" >&2; exit 1; }
        Xvfb :99 -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 &
        XVFB_PID=$!
        for _ in $(seq 50); do  # up to 5 s for the socket to appear
            [ -S /tmp/.X11-unix/X99 ] && break
            kill -0 "$XVFB_PID" 2>/dev/null || { echo "[test] ERROR: Xvfb :99 failed to start" >&2; exit 1; }
            sleep 0.1
        done
        echo "[test] started Xvfb on :99 (pid $XVFB_PID)"
    fi
    export DISPLAY=:99
fi

set +e
"${HANDMESH_VENV:-.venv}/bin/python" -m pytest "$@"
rc=$?
set -e
exit "$rc"
