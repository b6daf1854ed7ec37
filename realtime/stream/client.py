"""Python client for the hand stream: subscribe, decode into NumPy, iterate.

::

    from realtime.stream.client import HandClient

    with HandClient(topics=("joints",)) as client:  # joints only: no vertices, less bandwidth
        faces = client.topology().arrays.get("faces")  # asks the publisher's request socket
        for msg in client:                            # blocks; Ctrl-C to stop
            for hand in msg.hands:
                print(hand["handedness"], hand["wrist_position"], hand["finger_angles"])
                if hand.get("pinch") and hand["pinch"]["changed"]:  # an engage or release
                    print("pinch", "engaged" if hand["pinch"]["engaged"] else "released")

Rigged mode (``--publish-mode rigged``): hands carry bone rotations instead of vertices;
``skin_rigged(client.topology(), hand)`` skins them exactly as the Unity script does.

Run ``handmesh-stream listen`` for a live per-frame summary. A message that cannot be
decoded (malformed, truncated, oversized, or a known field or array of the wrong type or
shape: ``realtime.stream.schema``) is skipped, counted in ``rejected``, kept in
``last_error`` and logged (at most one warning a second, with the number held back); a
schema version this client cannot read raises :class:`SchemaMismatch` (updating one side
is the only fix). ``max_message_bytes`` (16 MB by default) is also the sockets'
``ZMQ_MAXMSGSIZE`` (plus a little for framing): ZeroMQ drops a larger message as it
arrives (dropping that connection; the client connects again, counted in ``reconnects``)
instead of receiving it in full. ``missed`` counts messages lost between publisher and
client, from gaps in the per-topic sequence numbers.

A publisher with CURVE keys (``docs/protocol.md``, Security) needs this client's own key pair
and the server's public key: ``HandClient(endpoint, curve_secret_key_file=
"keys/client-me.key_secret", curve_server_public_key_file="keys/server.key")``. A client whose
key the publisher does not list, or one without keys, receives nothing (ZeroMQ retries the
handshake quietly; ``recv`` times out).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import zmq

from realtime.errors import RealtimeError
from realtime.stream import protocol
from realtime.stream.bones import skin_rigged
from realtime.stream.protocol import Message, ProtocolError, SchemaMismatch

__all__ = ["HandClient", "Message", "ProtocolError", "SchemaMismatch", "skin_rigged", "summary"]

log = logging.getLogger(__name__)


class HandClient:
    """A SUB socket on the publisher's endpoint, for some topics (``hands``, ``joints``...).

    ``topology_endpoint`` defaults to the PUB port + 1 (``protocol.topology_endpoint_for``).
    ``conflate=True`` keeps only the newest message (latest-only, for control loops; then
    ``missed`` counts what was skipped over). ``curve_secret_key_file`` (this client's
    ``.key_secret``) and ``curve_server_public_key_file`` (the publisher's ``server.key``)
    make both the SUB and the topology REQ socket CURVE clients; give both or neither.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555",
                 topics: Iterable[str | bytes] = ("hands",),
                 topology_endpoint: str | None = None, conflate: bool = False,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
                 context: zmq.Context | None = None,
                 curve_secret_key_file: str | Path | None = None,
                 curve_server_public_key_file: str | Path | None = None) -> None:
        if (curve_secret_key_file is None) != (curve_server_public_key_file is None):
            raise ValueError("a CURVE client needs both its own secret key file and the "
                             "server's public key file")
        self._curve: tuple[bytes, bytes, bytes] | None = None
        if curve_secret_key_file is not None:
            from realtime.stream import keys

            try:
                public, secret = keys.load_secret(curve_secret_key_file)
                server = keys.load_public(curve_server_public_key_file)
            except keys.CurveKeyError as exc:
                raise ValueError(str(exc)) from exc
            self._curve = (public, secret, server)
        self.endpoint = endpoint
        # The convention (docs/protocol.md): the topology request socket is on the PUB port + 1.
        self.topology_endpoint = topology_endpoint or protocol.topology_endpoint_for(endpoint)
        self.max_message_bytes = max_message_bytes
        self.topics = tuple(t.encode() if isinstance(t, str) else bytes(t) for t in topics)
        self._ctx = context or zmq.Context.instance()
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.MAXMSGSIZE, self._socket_limit)
        self._set_curve(self._sub)
        self._sub.setsockopt(zmq.RCVHWM, 10_000)
        if conflate:
            self._sub.setsockopt(zmq.CONFLATE, 1)  # single-frame messages: safe
        for t in self.topics:
            self._sub.setsockopt(zmq.SUBSCRIBE, t + b" ")  # exact topic, not a prefix
        self._sub.connect(endpoint)
        self._log = RateLimitedLog(log)
        self._reconnect = Reconnector(self._sub, endpoint, logger=self._log)
        self._poller = zmq.Poller()
        self._poller.register(self._sub, zmq.POLLIN)
        self._poller.register(self._reconnect.monitor, zmq.POLLIN)
        self._last_seq: dict[str, int] = {}
        self.received = 0
        self.missed = 0
        self.rejected = 0
        self.last_error: ProtocolError | None = None

    @property
    def _socket_limit(self) -> int:
        return self.max_message_bytes + protocol.TRANSPORT_SLACK_BYTES

    def _set_curve(self, sock: zmq.Socket) -> None:
        if self._curve is not None:
            public, secret, server = self._curve
            sock.curve_publickey = public
            sock.curve_secretkey = secret
            sock.curve_serverkey = server

    # -- receiving ------------------------------------------------------------------------
    def _count(self, msg: Message) -> None:
        seq = msg.seq
        last = self._last_seq.get(msg.topic)
        if last is not None and seq > last + 1:
            self.missed += seq - last - 1
        self._last_seq[msg.topic] = seq  # a smaller one: the publisher restarted
        self.received += 1

    @property
    def reconnects(self) -> int:
        """How often the publisher dropped us for a protocol error (e.g. a message over
        ``max_message_bytes``) and we connected again."""
        return self._reconnect.count

    def _ready(self, deadline: float | None) -> bool:
        """Wait for a message until ``deadline`` (None: forever), reconnecting on the way
        if the publisher dropped us; False when the time is up."""
        while True:
            self._reconnect.check()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            due = self._reconnect.wait_s()
            if due is not None:
                wait = due if wait is None else min(wait, due)
            events = dict(self._poller.poll(-1 if wait is None else int(wait * 1000) + 1))
            if self._sub in events:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def recv(self, timeout_ms: int | None = 1000) -> Message | None:
        """The next decodable message, or None after ``timeout_ms`` (None: wait forever)."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            if not self._ready(deadline):
                return None
            raw = self._sub.recv(zmq.NOBLOCK, copy=False)
            msg = self._decode(raw.buffer)
            if msg is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            self._count(msg)
            return msg

    def _decode(self, buf) -> Message | None:
        """The message, or None (counted, logged) if it cannot be decoded."""
        try:
            return protocol.decode(buf, self.max_message_bytes)
        except SchemaMismatch:
            raise
        except ProtocolError as exc:
            self.rejected += 1
            self.last_error = exc
            self._log.warning("rejected a message: %s", exc)
            return None

    def recv_raw(self, timeout_ms: int | None = 1000, validate: bool = False) -> bytes | None:
        """The next message undecoded (recording), or None after ``timeout_ms``.

        ``validate``: only a message that decodes (the recorder keeps no garbage); others
        are skipped and counted in ``rejected`` as in :meth:`recv`.
        """
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            if not self._ready(deadline):
                return None
            raw = self._sub.recv(zmq.NOBLOCK)
            if not validate:
                return raw
            msg = self._decode(raw)
            if msg is not None:
                self._count(msg)
                return raw
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv(None)
            if msg is not None:
                yield msg

    def topology(self, timeout_ms: int = 2000) -> Message:
        """Ask the publisher for the topology (faces, joint tree) through its request socket."""
        return protocol.decode(self.topology_raw(timeout_ms), self.max_message_bytes)

    def topology_raw(self, timeout_ms: int = 2000) -> bytes:
        """The publisher's topology message, undecoded (REQ to the publisher's ROUTER)."""
        req = self._ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.MAXMSGSIZE, self._socket_limit)
        try:
            self._set_curve(req)
            req.connect(self.topology_endpoint)
            req.send(b"topology")
            if not req.poll(timeout_ms, zmq.POLLIN):
                raise RealtimeError(f"no topology from {self.topology_endpoint} within "
                                    f"{timeout_ms} ms: is the publisher running?")
            return req.recv()
        finally:
            req.close(linger=0)

    def close(self) -> None:
        if not self._sub.closed:
            self._reconnect.close()
            self._sub.close(linger=0)

    def __enter__(self) -> HandClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reconnector:
    """Connects a socket again after ZeroMQ dropped its peer for a protocol error.

    A message over ``ZMQ_MAXMSGSIZE`` is a protocol error, and libzmq does not reconnect
    after one (it does after network errors): one oversized message from a rogue or buggy
    publisher would silence the receiver for good. This watches the socket's
    ``EVENT_DISCONNECTED`` (a monitor socket) and connects again, at most once per
    ``min_interval_s`` (a peer that fails every handshake is not hammered); ``count`` says
    how often.
    """

    def __init__(self, sock: zmq.Socket, endpoint: str, min_interval_s: float = 0.5,
                 logger: RateLimitedLog | None = None) -> None:
        self.sock, self.endpoint, self.min_interval_s = sock, endpoint, min_interval_s
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.count = 0
        self.pending = False
        self._next = 0.0
        self._log = logger

    def check(self) -> None:
        """Take in the socket's events; reconnect if it was dropped (and it is time)."""
        while True:
            try:
                self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.pending = True
        now = time.monotonic()
        if not self.pending or now < self._next:
            return
        self.pending = False
        self._next = now + self.min_interval_s
        self.count += 1
        if self._log is not None:
            self._log.warning("%s dropped the connection (a message over the size limit, or "
                              "a protocol error): connecting again", self.endpoint)
        try:
            self.sock.disconnect(self.endpoint)
        except zmq.ZMQError:
            pass
        self.sock.connect(self.endpoint)

    def wait_s(self) -> float | None:
        """How long a caller may block before :meth:`check` is due (None: no limit)."""
        return max(0.0, self._next - time.monotonic()) if self.pending else None

    def close(self) -> None:
        if not self.monitor.closed:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)


class RateLimitedLog:
    """Warnings at most once per ``interval_s``, then how many were held back: a peer that
    sends garbage at 10 kHz must not flood the log (or the disk) of the receiver."""

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._next = 0.0
        self.suppressed = 0

    def warning(self, fmt: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self.suppressed += 1
            return
        self._next = now + self.interval_s
        if self.suppressed:
            fmt += " (and %d more in the last %.0f s)"
            args = (*args, self.suppressed, self.interval_s)
            self.suppressed = 0
        self.logger.warning(fmt, *args)


def summary(msg: Message) -> str:
    """One line per frame: sequence, latency, and each hand's side, wrist, flexion and pinch
    (distance in mm, PINCH while engaged, a ! on the frame it flipped)."""
    h = msg.header
    lat = ""
    if h.get("t_capture") is not None:
        lat = f" {1000 * (time.monotonic() - h['t_capture']):5.1f} ms"
    parts = [f"{msg.topic} #{msg.seq} frame {h.get('frame_index')}{lat}"]
    for hand in msg.hands:
        w = hand.get("wrist_position", np.full(3, np.nan))
        ang = np.degrees(np.nanmean(hand["finger_angles"])) if "finger_angles" in hand and \
            np.isfinite(hand["finger_angles"]).any() else float("nan")
        mesh = (f"{len(hand['vertices'])} vertices" if "vertices" in hand else
                f"rigged ({len(hand['rotations'])} joints)" if "rotations" in hand else
                "no mesh")
        parts.append(f"{hand.get('handedness')}#{hand.get('track_id')} wrist "
                     f"({w[0]:+.3f},{w[1]:+.3f},{w[2]:+.3f}) m, flexion {ang:4.0f} deg, "
                     f"{mesh}{_pinch_text(hand.get('pinch'))}")
    if not msg.hands:
        parts.append("no hands")
    return " | ".join(parts)


def _pinch_text(pinch: object) -> str:
    """``, pinch 12 mm PINCH!`` (engaged, flipped this frame); empty without a pinch."""
    if not isinstance(pinch, dict):
        return ""
    d = pinch.get("distance_m")
    mm = f"{1000 * d:3.0f} mm" if isinstance(d, (int, float)) else "? mm"
    state = " PINCH" if pinch.get("engaged") else ""
    return f", pinch {mm}{state}{'!' if pinch.get('changed') else ''}"
