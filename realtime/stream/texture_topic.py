"""The ``texture`` topic: each hand's fused texture, sent when it changes.

One message per change, in the project's one-frame format (``realtime.stream.protocol.encode``),
topic ``texture``. Header fields: ``seq``, ``t_send`` and per hand ``track_id``,
``handedness``, ``version`` (bumped by the fuser when any vertex changed); per-hand arrays
(float32): ``vertex_colors (V,3)`` RGB in [0,1] on the hand model's vertices (the order of
the ``topology`` topic's mesh) and ``vertex_weight (V,)`` (0 = never seen: show a default
colour there). The UV atlas (``models/assets/open_hand_uv.npz``) maps the same colours to
an image for engines that want a texture map: ``realtime.mesh.texture.bake_texture``.

Kept apart from ``realtime.stream.publisher`` (which owns the sockets): :class:`TextureTopic`
decides *when* to send and builds the bytes; the publisher sends them on its PUB socket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from models.uv_layout import UVLayout
from realtime.mesh.texture import HandTexture, TextureFuser
from realtime.stream.protocol import TOPIC_TEXTURE, Message, decode, encode


def encode_texture(textures: dict[int, HandTexture], seq: int) -> bytes:
    """One ``texture`` message with every given track's texture."""
    hands = []
    for tid, tex in sorted(textures.items()):
        hands.append(({"track_id": int(tid), "handedness": tex.handedness,
                       "version": int(tex.version)},
                      {"vertex_colors": tex.colors.astype("<f4"),
                       "vertex_weight": tex.weight.astype("<f4")}))
    return encode(TOPIC_TEXTURE, {"seq": int(seq), "t_send": time.time()}, hands)


def uv_arrays(layout: UVLayout) -> dict[str, np.ndarray]:
    """The UV layout as wire arrays for the ``topology`` message (``uv (T,2) <f4``,
    ``uv_faces (F,3) <i4``, ``uv_vertex (T,) <i4`` the mesh vertex of each UV vertex), so a
    receiver can build a textured mesh from ``vertex_colors`` or a baked atlas."""
    return {"uv": layout.uv.astype("<f4"), "uv_faces": layout.uv_faces.astype("<i4"),
            "uv_vertex": layout.vmapping.astype("<i4")}


def decode_texture(msg: bytes) -> Message:
    """Decode a ``texture`` message (``ProtocolError`` on anything malformed)."""
    out = decode(msg)
    if out.topic != TOPIC_TEXTURE.decode():
        raise ValueError(f"not a texture message: topic {out.topic!r}")
    return out


class TextureSink:
    """A pipeline sink that publishes the fuser's textures on change through ``send(message)``
    (the publisher's ``send_raw``, on its own socket)."""

    def __init__(self, fuser: TextureFuser, send: Callable[[bytes], object],
                 topic: "TextureTopic | None" = None) -> None:
        self.fuser = fuser
        self.send = send
        self.topic = topic or TextureTopic()

    def write(self, packet) -> None:
        msg = self.topic.message(self.fuser.textures)
        if msg is not None:
            self.send(msg)

    def close(self) -> None:
        """Nothing to release: the sockets belong to whoever gave ``send``."""


@dataclass
class TextureTopic:
    """Builds a ``texture`` message when a texture changed, at most every ``min_interval_s``
    (a texture changes a little on almost every frame; engines need it far less often)."""

    min_interval_s: float = 0.5
    _sent: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _last_t: float = field(default=float("-inf"), init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def message(self, textures: dict[int, HandTexture], now: float | None = None
                ) -> bytes | None:
        """The bytes to publish now, or None when nothing changed or it is too soon."""
        now = time.monotonic() if now is None else now
        changed = {t: x for t, x in textures.items() if self._sent.get(t) != x.version}
        if not changed or now - self._last_t < self.min_interval_s:
            return None
        self._last_t = now
        self._seq += 1
        for t, x in changed.items():
            self._sent[t] = x.version
        return encode_texture(changed, self._seq)
