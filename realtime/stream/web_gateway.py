"""The WebSocket gateway: the published stream for browsers and game engines (``--web``).

Browsers and Godot cannot speak ZeroMQ, so the publisher hands every message it sends
(``hands``, ``joints``, ``topology``, ``texture``, ``status``: the exact bytes, one
ZeroMQ frame each, ``docs/protocol.md``) to :meth:`WebGateway.publish` as well, and the
gateway forwards each one as ONE binary WebSocket message. The same server serves the
browser viewer (``integrations/web/``) over plain HTTP.

Why it never slows the loop: :meth:`publish` runs in the publishing thread and only copies
the message into a "latest" slot per topic and wakes the gateway's own asyncio loop (a
daemon thread, ``websockets``). Each client has a sender task that, when woken, sends the
newest message of every topic it subscribes to that it has not sent yet, oldest first. A
slow or stalled client blocks only its own task (in the socket's drain) and so loses the
frames in between (latest-only per client per topic); the pipeline never waits, and what a
stalled client costs is bounded by the write buffer (``write_limit``) and the kernel's.
The ``topology`` slot is kept, so a client gets it on connect and whenever it changes.

URL ``ws://HOST:PORT/ws?topics=hands,topology&token=...`` (``topics``: default all).
Security: loopback binds by default; any other host needs a token, given by the client as
``?token=`` or ``Authorization: Bearer`` and compared in constant time
(``hmac.compare_digest``), for the page and the socket alike. What a client may send:
small text JSON objects (``max_incoming_bytes``, rate limited): ``{"subscribe": [topics]}``
and ``{"echo": {"seq": N, "t_render_ms": T}}`` (the viewer's "frame N was on screen at
wall time T", for the latency benchmark). Anything else (binary, bad JSON, unknown keys,
too large, too many) drops the client with a logged reason (``dropped`` counts them).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import mimetypes
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from realtime.stream import protocol

log = logging.getLogger(__name__)

#: The viewer's files, served over HTTP (only files found here at start, by name).
WEB_ROOT = Path(__file__).resolve().parents[2] / "integrations" / "web"
TOPIC_NAMES = tuple(t.decode() for t in protocol.TOPICS)
_SEQ = re.compile(rb'"seq":\s*(\d+)')
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` only lets this machine connect."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_web_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``8080``, ``0.0.0.0:8080``, ``[::1]:8080``) -> ``(host, port)``;
    the host defaults to 127.0.0.1. Port 0 picks a free port."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web {text!r}: expected [HOST:]PORT with a port in 0-65535 "
                         "(e.g. 8080 or 127.0.0.1:8080)")
    return host, int(port)


@dataclass(frozen=True)
class WebConfig:
    """Where the gateway listens and what a client may do. A non-loopback ``host`` needs a
    ``token`` (refused otherwise: the hands would be readable by anyone on the network)."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (``WebGateway.port`` says which)
    token: str | None = None
    max_incoming_bytes: int = 4096  # one control message (JSON text)
    max_messages_per_s: float = 200.0  # control messages per client (the echo: one a frame)
    max_clients: int = 64
    write_limit: int = 256 << 10  # bytes buffered per client before its sender waits
    web_root: Path = WEB_ROOT

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"web port must be in 0-65535, got {self.port}")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("--web-token must be at least 8 characters")
        if not is_loopback_host(self.host) and not self.token:
            raise ValueError(f"refusing to serve the hands on {self.host} without a token: "
                             "anyone on the network could watch them. Bind 127.0.0.1 or "
                             "give --web-token")
        if self.max_incoming_bytes < 64 or self.max_clients < 1 or self.write_limit < 1024:
            raise ValueError("max_incoming_bytes >= 64, max_clients >= 1, write_limit >= 1024")


def web_config(address: str | None, token: str | None):
    """``--web [HOST:]PORT`` and ``--web-token`` -> a WebConfig, or None without ``--web``."""
    if address is None:
        if token is not None:
            raise ValueError("--web-token needs --web [HOST:]PORT")
        return None
    host, port = parse_web_address(address)
    try:
        return WebConfig(host=host, port=port, token=token)
    except ValueError as exc:
        raise ValueError(f"--web {address}: {exc}") from exc


@dataclass(eq=False)
class _Client:
    """One connection: its topics, what it was last sent per topic, its message budget."""

    ws: object
    topics: set[str]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent_version: dict[str, int] = field(default_factory=dict)
    tokens: float = 0.0
    t_tokens: float = field(default_factory=time.monotonic)
    sent: int = 0


class ClientError(Exception):
    """What a client did wrong; the message is the logged reason it was dropped for."""


class WebGateway:
    """The WebSocket + HTTP server in its own thread; :meth:`publish` feeds it.

    Counters: ``clients`` (now), ``connections`` (ever), ``dropped`` (reason -> count),
    ``sent`` (messages sent, all clients), ``echoes`` (recent ``(seq, t_render_wall_s,
    t_publish_wall_s, t_echo_wall_s)``), ``publish_costs_s`` (recent cost of each
    :meth:`publish` call, seconds, the publishing thread's).
    """

    def __init__(self, config: WebConfig = WebConfig()) -> None:
        import websockets  # noqa: F401 - fail here, with the rest of the set-up, if missing

        self.config = config
        self._files = self._viewer_files(config.web_root)
        self._latest: dict[str, tuple[int, bytes]] = {}
        self._version = 0
        self._lock = threading.Lock()  # version counter + slots (publish vs a second caller)
        self._clients: set[_Client] = set()
        self._wanted: Counter[str] = Counter()
        self.connections = 0
        self.sent = 0
        self.dropped: Counter[str] = Counter()
        self._published_at: dict[int, float] = {}
        self._published_order: deque[int] = deque()
        self.echoes: deque[tuple[int, float, float, float]] = deque(maxlen=100_000)
        self.publish_costs_s: deque[tuple[str, float]] = deque(maxlen=100_000)
        self._last_warning = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._stop: asyncio.Future | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = config.port
        self._thread = threading.Thread(target=self._run, name="web-gateway", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise ValueError(f"cannot serve --web on {config.host}:{config.port}: "
                             f"{self._error}") from self._error
        if not self._ready.is_set():
            raise ValueError(f"--web {config.host}:{config.port}: the server did not start")

    # -- the publishing thread ------------------------------------------------------------
    def publish(self, msg) -> None:
        """Take one encoded message (bytes or a buffer: copied here); never blocks."""
        t0 = time.perf_counter()
        head = bytes(msg[:24])
        space = head.find(b" ")
        topic = head[:space].decode("ascii", "replace") if space > 0 else ""
        if topic not in TOPIC_NAMES:
            return
        data = bytes(msg)
        if topic == "hands":  # remember when each frame went out (the echo's latency)
            m = _SEQ.search(data, 0, 200)
            if m is not None:
                seq = int(m.group(1))
                self._published_at[seq] = time.time()
                self._published_order.append(seq)
                if len(self._published_order) > 4096:
                    self._published_at.pop(self._published_order.popleft(), None)
        with self._lock:
            self._version += 1
            self._latest[topic] = (self._version, data)
        if self._clients and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # the loop closed (shutting down)
                pass
        self.publish_costs_s.append((topic, time.perf_counter() - t0))

    def wants(self, topic: str) -> bool:
        """Whether any connected client subscribes to ``topic`` (so the publisher builds it)."""
        return self._wanted[topic] > 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def url(self) -> str:
        """The viewer page's address (with the token when one is set)."""
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/" + (f"?token={self.config.token}"
                                                 if self.config.token else "")

    # -- the gateway thread ---------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the constructor
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        c = self.config
        async with serve(self._handler, c.host, c.port, process_request=self._http,
                         max_size=c.max_incoming_bytes, max_queue=4,
                         write_limit=c.write_limit, compression=None, ping_interval=20,
                         ping_timeout=20, open_timeout=5, close_timeout=1,
                         logger=log.getChild("ws")) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def _wake_all(self) -> None:
        for client in self._clients:
            client.wake.set()

    def _authorised(self, request) -> bool:
        token = self.config.token
        if not token:
            return True
        given = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())

    def _http(self, connection, request):
        """Before the handshake: the token, the client limit, and the viewer's files."""
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        def respond(status: HTTPStatus, body: bytes, ctype: str = "text/plain; charset=utf-8"):
            headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                               ("Cache-Control", "no-store"), ("Connection", "close"),
                               ("X-Content-Type-Options", "nosniff")])
            return Response(status.value, status.phrase, headers, body)

        if not self._authorised(request):
            self._drop_reason("wrong or missing token", connection.remote_address)
            return respond(HTTPStatus.UNAUTHORIZED, b"token required\n")
        path = urlsplit(request.path).path
        if path == "/ws":
            if len(self._clients) >= self.config.max_clients:
                self._drop_reason("too many clients", connection.remote_address)
                return respond(HTTPStatus.SERVICE_UNAVAILABLE, b"too many clients\n")
            return None  # go on with the WebSocket handshake
        name = "index.html" if path == "/" else path.lstrip("/")
        body = self._files.get(name)
        if body is None:
            return respond(HTTPStatus.NOT_FOUND, b"not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            ctype = "text/javascript"
        return respond(HTTPStatus.OK, body, ctype + ("; charset=utf-8" if "text" in ctype
                                                      or "javascript" in ctype else ""))

    @staticmethod
    def _viewer_files(root: Path) -> dict[str, bytes]:
        """Every viewer file by its path under ``root`` (read once: nothing else is served)."""
        files = {}
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix in (".html", ".js", ".css", ".png", ".txt"):
                    files[p.relative_to(root).as_posix()] = p.read_bytes()
        return files

    def _drop_reason(self, reason: str, who) -> None:
        """Count a refused or dropped client; log it (warnings at most one a second)."""
        self.dropped[reason] += 1
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self._last_warning = now
            log.warning("web client %s dropped: %s (%d so far for this reason)", who, reason,
                        self.dropped[reason])
        else:
            log.info("web client %s dropped: %s", who, reason)

    async def _handler(self, ws) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        who = ws.remote_address
        try:
            topics = _topics(query.get("topics", [",".join(TOPIC_NAMES)])[0].split(","))
        except ClientError as exc:
            self._drop_reason(str(exc), who)
            await ws.close(1008, str(exc)[:120])
            return
        client = _Client(ws, topics, tokens=self.config.max_messages_per_s)
        self._clients.add(client)
        self._wanted.update(topics)
        self.connections += 1
        log.info("web client %s connected (%s)", who, ",".join(sorted(topics)))
        client.wake.set()  # the topology (and the newest of everything) at once
        sender = asyncio.create_task(self._send_loop(client))
        reason = None
        try:
            async for message in ws:
                self._control(client, message)
        except ClientError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. ConnectionClosedError (too big: 1009)
            reason = _closed_reason(exc)
        finally:
            sender.cancel()
            self._clients.discard(client)
            self._wanted.subtract(client.topics)
            if reason is not None:
                self._drop_reason(reason, who)
                await ws.close(1008, reason[:120])
            else:
                log.info("web client %s left", who)

    def _control(self, client: _Client, message) -> None:
        """A client's message: validated, rate limited, applied; ClientError otherwise."""
        now = time.monotonic()
        rate = self.config.max_messages_per_s
        client.tokens = min(rate, client.tokens + (now - client.t_tokens) * rate)
        client.t_tokens = now
        if client.tokens < 1.0:
            raise ClientError("too many messages")
        client.tokens -= 1.0
        if not isinstance(message, str):
            raise ClientError("binary message (only small JSON text is accepted)")
        try:
            obj = json.loads(message)
        except ValueError:
            raise ClientError("not JSON") from None
        if not isinstance(obj, dict) or not obj or set(obj) - {"subscribe", "echo"}:
            raise ClientError("not a control message ({\"subscribe\": [...]} or {\"echo\": ...})")
        if "subscribe" in obj:
            if not isinstance(obj["subscribe"], list):
                raise ClientError("subscribe: expected a list of topics")
            topics = _topics(obj["subscribe"])
            self._wanted.subtract(client.topics)
            client.topics = topics
            self._wanted.update(topics)
            client.wake.set()
        if "echo" in obj:
            e = obj["echo"]
            if not (isinstance(e, dict) and isinstance(e.get("seq"), int)
                    and isinstance(e.get("t_render_ms"), (int, float))
                    and not isinstance(e.get("seq"), bool)):
                raise ClientError("echo: expected {\"seq\": int, \"t_render_ms\": number}")
            t_pub = self._published_at.get(e["seq"])
            if t_pub is not None:
                self.echoes.append((e["seq"], float(e["t_render_ms"]) / 1000.0, t_pub,
                                    time.time()))

    async def _send_loop(self, client: _Client) -> None:
        """Send this client the newest message of each of its topics it has not had yet."""
        ws = client.ws
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                latest = self._latest
                due = sorted((v, t) for t in client.topics if (slot := latest.get(t))
                             and (v := slot[0]) > client.sent_version.get(t, 0))
                for version, topic in due:
                    v, data = latest[topic]  # the newest now (it may have moved on)
                    client.sent_version[topic] = v
                    await ws.send(data)  # waits (this client only) while its buffer is full
                    client.sent += 1
                    self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection went away
            log.debug("web client %s: send ended: %s", ws.remote_address, exc)

    # -- shutdown -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving (closes every connection) and end the thread; idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
            except RuntimeError:
                pass
        self._thread.join(timeout=5.0)

    def __enter__(self) -> WebGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _topics(names) -> set[str]:
    """Validated topic names (an unknown one is the client's error)."""
    if len(names) > len(TOPIC_NAMES) * 2:
        raise ClientError("too many topics")
    out = set()
    for n in names:
        if not isinstance(n, str) or n.strip() not in TOPIC_NAMES:
            raise ClientError(f"unknown topic {str(n)[:40]!r} (known: {','.join(TOPIC_NAMES)})")
        out.add(n.strip())
    return out


def _closed_reason(exc: Exception) -> str:
    """Why websockets ended a connection, in words (a 1009: the message was too big)."""
    rcvd = getattr(exc, "rcvd", None) or getattr(exc, "sent", None)
    code = getattr(rcvd, "code", None)
    if code == 1009:
        return "message too big"
    if code in (1000, 1001, None) and type(exc).__name__ == "ConnectionClosedOK":
        return None
    return f"{type(exc).__name__}: {exc}"
