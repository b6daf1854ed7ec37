"""Python client for the hand stream: subscribe, decode into NumPy, iterate.

::

    from realtime.stream.client import HandClient

    with HandClient(topics=("joints",)) as client:  # joints only: no vertices, less bandwidth
        faces = client.topology().arrays.get("faces")  # asks the publisher's REP socket
        for msg in client:                            # blocks; Ctrl-C to stop
            for hand in msg.hands:
                print(hand["handedness"], hand["wrist_position"], hand["finger_angles"])
                if hand.get("pinch") and hand["pinch"]["changed"]:  # an engage or release
                    print("pinch", "engaged" if hand["pinch"]["engaged"] else "released")

Rigged mode (``--publish-mode rigged``): hands carry bone rotations instead of vertices;
``skin_rigged(client.topology(), hand)`` skins them exactly as the Unity script does.

Run ``handmesh-stream listen`` for a live per-frame summary. A message that cannot be
decoded (malformed, truncated, oversized) is skipped, counted in ``rejected`` and kept in
``last_error``; a schema version this client cannot read raises :class:`SchemaMismatch`
(updating one side is the only fix). ``missed`` counts messages lost between publisher and
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
        # The convention (docs/protocol.md): the REP socket is on the PUB port + 1.
        self.topology_endpoint = topology_endpoint or protocol.topology_endpoint_for(endpoint)
        self.max_message_bytes = max_message_bytes
        self.topics = tuple(t.encode() if isinstance(t, str) else bytes(t) for t in topics)
        self._ctx = context or zmq.Context.instance()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._set_curve(self._sub)
        self._sub.setsockopt(zmq.RCVHWM, 10_000)
        if conflate:
            self._sub.setsockopt(zmq.CONFLATE, 1)  # single-frame messages: safe
        for t in self.topics:
            self._sub.setsockopt(zmq.SUBSCRIBE, t + b" ")  # exact topic, not a prefix
        self._sub.connect(endpoint)
        self._last_seq: dict[str, int] = {}
        self.received = 0
        self.missed = 0
        self.rejected = 0
        self.last_error: ProtocolError | None = None

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

    def recv(self, timeout_ms: int | None = 1000) -> Message | None:
        """The next decodable message, or None after ``timeout_ms`` (None: wait forever)."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            wait = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self._sub.poll(wait, zmq.POLLIN):
                return None
            raw = self._sub.recv(zmq.NOBLOCK, copy=False)
            try:
                msg = protocol.decode(raw.buffer, self.max_message_bytes)
            except SchemaMismatch:
                raise
            except ProtocolError as exc:
                self.rejected += 1
                self.last_error = exc
                log.warning("rejected a message: %s", exc)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            self._count(msg)
            return msg

    def recv_raw(self, timeout_ms: int | None = 1000) -> bytes | None:
        """The next message undecoded (recording), or None after ``timeout_ms``."""
        if not self._sub.poll(-1 if timeout_ms is None else timeout_ms, zmq.POLLIN):
            return None
        return self._sub.recv(zmq.NOBLOCK)

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv(None)
            if msg is not None:
                yield msg

    def topology(self, timeout_ms: int = 2000) -> Message:
        """Ask the publisher for the topology (faces, joint tree) through its REP socket."""
        return protocol.decode(self.topology_raw(timeout_ms), self.max_message_bytes)

    def topology_raw(self, timeout_ms: int = 2000) -> bytes:
        """The publisher's topology message, undecoded (REQ/REP)."""
        req = self._ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
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
            self._sub.close(linger=0)

    def __enter__(self) -> HandClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
