"""Headless Chromium driven over the Chrome DevTools Protocol, for the browser viewer's test
and benchmark (``tests/test_web_viewer.py``, ``benchmarks/web.py``).

Debian's ``chromium`` (``scripts/setup_env.sh`` installs it) runs with software GL
(SwiftShader: no GPU, no display). The DevTools socket is a WebSocket, so a small client
over ``websockets`` does: navigate, evaluate JavaScript, take a screenshot. Nothing here is
a stand-in: the page runs in the real browser, its WebGL in SwiftShader.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The Chromium executable, or None (install Debian's ``chromium``)."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class ChromiumError(RuntimeError):
    """The browser did not start, or a DevTools command failed."""


class Chromium:
    """One headless Chromium process with one page; ``close`` ends it (and its profile)."""

    def __init__(self, width: int = 1280, height: int = 720, timeout_s: float = 30.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise ChromiumError("chromium is not installed (apt-get install chromium)")
        self._profile = tempfile.mkdtemp(prefix="handmesh-chromium-")
        self._log = open(Path(self._profile) / "chromium.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu-sandbox",
             "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--ignore-gpu-blocklist", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows", "--mute-audio",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT)
        self._ids = itertools.count(1)
        self._ws = None
        try:
            port = self._devtools_port(timeout_s)
            self._ws = self._page_socket(port, timeout_s)
            self.call("Page.enable")
            self.call("Runtime.enable")
            # the page's viewport is exactly width x height CSS pixels at scale 1 (a headless
            # window's size includes its frame)
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout_s: float) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise ChromiumError(f"chromium exited with {self.proc.returncode}: "
                                    f"{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().split()[0])
            time.sleep(0.05)
        raise ChromiumError(f"chromium did not open its DevTools port in {timeout_s:g} s")

    def _page_socket(self, port: int, timeout_s: float):
        from websockets.sync.client import connect

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                            timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:  # entered as a context (websockets wants it), left in close()
                    return connect(pages[0]["webSocketDebuggerUrl"], max_size=None,
                                   open_timeout=timeout_s).__enter__()
            time.sleep(0.1)
        raise ChromiumError("no page target in chromium")

    def call(self, method: str, timeout_s: float = 30.0, **params) -> dict:
        """One DevTools command; its ``result`` (events in between are skipped)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        end = time.monotonic() + timeout_s
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.01, end - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str, timeout_s: float = 30.0):
        """The value of a JavaScript expression (JSON-serialisable), awaiting promises."""
        result = self.call("Runtime.evaluate", timeout_s, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0, every_s: float = 0.1):
        """Poll a JavaScript expression until it is truthy; its value (ChromiumError on time)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(every_s)
        raise ChromiumError(f"timed out waiting for {expression!r}; the page's counters: "
                            f"{self.evaluate('JSON.stringify(window.handmesh || null)')}")

    def screenshot(self, x: int = 0, y: int = 0, width: int | None = None,
                   height: int | None = None, timeout_s: float = 30.0) -> bytes:
        """A PNG of the page (or of a CSS-pixel rectangle of it)."""
        params = {"format": "png"}
        if width is not None and height is not None:
            params["clip"] = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", timeout_s,
                                          **params)["data"])

    def log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (Path(self._profile) / "chromium.log").read_bytes()[-n:].decode(
                "utf-8", "replace")
        return ""

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
