"""The ZeroMQ publisher: a pipeline publish sink that streams every frame's hands.

``Publisher.write(packet)`` runs on the latency path, so it never waits: each message is
sent with ``NOBLOCK``; a PUB socket drops a message silently for a subscriber whose queue
(``sndhwm``) is full, so a slow, dead or absent subscriber costs nothing and its losses
show as sequence gaps on its side (``HandClient.missed``); ``zmq.Again`` (not raised by PUB
in ZeroMQ 4, kept as a guard) and send errors are counted in ``dropped``. Topics
(``docs/protocol.md``): ``hands`` (full meshes), ``joints`` (the same without vertices),
``topology`` (faces, joint tree: at start, every ``topology_every_s`` and on request
through the request socket served by a small thread, see below),
``status`` (fps, latency, drops, once a second). Every frame is published, with or without
hands (an empty ``hands`` list says the hand is lost).

Cost: a two-hand mesh frame (the usual one) is packed by one compiled call straight into
the packer's reused ``hands`` message (``protocol.HandPacker.two_hand_messages``: header
from one format string, payload at a fixed offset) and sent: one Numba call and one ZeroMQ
call per frame, because at 60 Hz, after the 16 ms sleep, each distinct call costs its cold
price (~30-70 µs for the first NumPy, Numba or ZeroMQ call, ~2 µs for a repeat). Other
frames pack each hand once into a reused buffer (``protocol.HandPacker.pack``). The socket
is an XPUB: it reports subscriptions, and a topic nobody subscribes to is not built at all
(a Unity scene on ``hands`` costs nothing for ``joints``). ``mode="rigged"`` sends bone
rotations, the model-to-camera pose and shape instead of vertices (``realtime.stream.bones``; the
rest mesh and weights go on ``topology``).
``send_raw`` sends recorded messages unchanged (``realtime.stream.replay``).
``sender_thread=True`` moves encoding and sending to a thread of its own, so the loop only
hands the frame over (a few µs; a bounded queue that drops the oldest frame when the sender
falls behind, counted in ``dropped``); ``flush`` waits for it.

Topology requests: a ROUTER socket (wire-compatible with the REQ clients: ``HandClient``,
the Unity script) so that what a peer can make us hold is bounded: requests over
``TOPOLOGY_MAX_REQUEST_BYTES`` (4 kB) are refused by ZeroMQ as they arrive (it disconnects
that peer), at most ``TOPOLOGY_HWM`` requests and replies are queued per peer, each peer
gets at most ``TOPOLOGY_PEER_RATE`` replies a second and all peers together
``TOPOLOGY_TOTAL_RATE`` (the rest are read and dropped, counted in ``topology_refused``),
and every reply is the same pre-encoded frame (encoded once per topology change, shared by
reference: a queued reply costs ZeroMQ a few bytes, not 86 kB). Before, ten peers sending
10,000 requests each without reading took the demo from 232 to 1,037 MB.

Security: binding anything other than loopback (127.0.0.1, localhost, ::1, ipc://,
inproc://) needs either CURVE keys or ``insecure=True`` (``--insecure``, which logs a
warning). With ``curve_secret_key_file`` (the server's ``.key_secret``, from ``python -m
realtime.stream.keys generate``) and ``curve_allowed_clients_file`` (a directory of client ``.key``
files, or a file of z85 public keys, one per line), both sockets (PUB and the topology
request socket) are CURVE servers: traffic is encrypted, and a
``zmq.auth.thread.ThreadAuthenticator`` (on the publisher's own ZeroMQ context, stopped by
``close``) lets in only the listed clients; anyone else completes no handshake and receives
nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zmq

from models.hand_geometry import FINGER_JOINTS
from models.topology import KEYPOINT_PARENTS, Keypoint
from realtime.stream import protocol
from realtime.types import Packet

if TYPE_CHECKING:
    from realtime.stream.web_gateway import WebConfig, WebGateway

log = logging.getLogger(__name__)

#: Send queue per subscriber, in messages: 2 s at 60 Hz, so a subscriber that keeps up
#: never loses a message, while a slow or stalled one costs at most ~120 x 42 kB (~5 MB)
#: before ZeroMQ drops for it (10,000 let the publisher grow by ~80 MB with one slow
#: subscriber). On tcp a slow subscriber's backlog also sits in kernel buffers; its losses
#: show as sequence gaps on its side.
DEFAULT_SNDHWM = 120
MODES = ("mesh", "rigged")
#: How often the publishing thread reads subscriptions (XPUB): a topic is built and sent
#: only while someone subscribes to it, so a new subscriber's first messages may take this
#: long to start (besides ZeroMQ's own connection time).
SUBSCRIPTIONS_EVERY_S = 0.1
#: Topology requests are a few bytes ("topology"); anything larger is not a request.
TOPOLOGY_MAX_REQUEST_BYTES = 4096
#: Requests, and replies, queued per peer on the topology socket (ZeroMQ high-water marks).
TOPOLOGY_HWM = 4
#: Replies per second to one peer (burst: the same number); a client asks once per connection.
TOPOLOGY_PEER_RATE = 5.0
#: Replies per second to all peers together (~9 MB/s of 86 kB replies).
TOPOLOGY_TOTAL_RATE = 100.0
#: Peers whose request rate is remembered (the oldest are forgotten first).
TOPOLOGY_MAX_PEERS = 4096
#: The XPUB socket only receives subscriptions ("hands " ...): nothing a peer sends is larger.
MAX_SUBSCRIPTION_BYTES = 4096
ZAP_DOMAIN = "handmesh"  # the authentication domain of both CURVE server sockets
_TOPIC_NAMES = {t: t.decode() for t in protocol.TOPICS}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(endpoint: str) -> bool:
    """Whether an endpoint only accepts connections from this machine."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp" or not rest:
        return False
    host = rest.rsplit(":", 1)[0] if not rest.startswith("[") else rest[: rest.find("]") + 1]
    return host.lower() in _LOOPBACK_HOSTS


class _RequestLimiter:
    """Token buckets per peer and for all peers: ``allow(peer)`` says whether to answer."""

    def __init__(self, peer_rate: float, total_rate: float, max_peers: int) -> None:
        self.peer_rate, self.total_rate, self.max_peers = peer_rate, total_rate, max_peers
        self._peers: OrderedDict[bytes, list[float]] = OrderedDict()  # id -> [tokens, t]
        self._total = [total_rate, time.monotonic()]

    @staticmethod
    def _take(bucket: list[float], rate: float, now: float) -> bool:
        bucket[0] = min(rate, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True

    def allow(self, peer: bytes) -> bool:
        now = time.monotonic()
        bucket = self._peers.get(peer)
        if bucket is None:
            bucket = self._peers[peer] = [self.peer_rate, now]
            while len(self._peers) > self.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(peer)
        if not self._take(bucket, self.peer_rate, now):
            return False
        return self._take(self._total, self.total_rate, now)


def check_tcp_port(endpoint: str, what: str = "") -> None:
    """A tcp endpoint's port is a number in 1-65535: ZeroMQ binds a random port for a
    larger one (or for ``*``) while every message would name the given one, and clients
    find the topology socket on the next port. ``what`` says which endpoint it is."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "tcp":
        return
    port = rest.rpartition(":")[2] if ":" in rest else ""
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{endpoint}{f' ({what})' if what else ''}: the port must be a "
                         f"number in 1-65535, got {port or 'none'!r}")


@dataclass(frozen=True)
class PublisherConfig:
    """Where and how to publish. See the module docstring for the security rule."""

    # None (both): no ZeroMQ sockets at all, only the WebSocket gateway (``--web`` alone)
    endpoint: str | None = "tcp://127.0.0.1:5555"
    topology_endpoint: str | None = "tcp://127.0.0.1:5556"
    conflate: bool = False  # keep only the newest message per subscriber (tcp: see docs)
    sndhwm: int = DEFAULT_SNDHWM
    float16: bool = False  # vertices and vertex_std as float16 (half the bandwidth)
    # "mesh": vertices per frame; "rigged": bone rotations (realtime.stream.bones)
    mode: str = "mesh"
    # every hand also carries the 26 OpenXR joints (realtime.stream.openxr), when the
    # publisher has the hand model
    xr_joints: bool = True
    sender_thread: bool = False  # encode and send on an own thread; write() only hands over
    sender_queue: int = 4  # frames waiting for the sender thread; more: the oldest is dropped
    insecure: bool = False  # allow a non-loopback bind without CURVE
    curve_secret_key_file: Path | None = None  # the server's .key_secret (realtime.stream.keys)
    curve_allowed_clients_file: Path | None = None  # dir of client .key files, or key list
    topology_every_s: float = 5.0
    status_every_s: float = 1.0
    # every message also goes to browsers and engines over WebSocket (web_gateway)
    web: WebConfig | None = None

    def __post_init__(self) -> None:
        if self.endpoint is None or self.topology_endpoint is None:
            if self.endpoint is not None or self.topology_endpoint is not None:
                raise ValueError("give both ZeroMQ endpoints, or neither (web only)")
            if self.web is None:
                raise ValueError("a publisher without ZeroMQ endpoints needs the web gateway")
            if self.curve:
                raise ValueError("CURVE keys secure the ZeroMQ sockets: give --publish too")
            return
        for ep in (self.endpoint, self.topology_endpoint):
            if "://" not in ep:
                raise ValueError(f"endpoint {ep!r} is not a ZeroMQ endpoint "
                                 "(e.g. tcp://127.0.0.1:5555)")
        check_tcp_port(self.endpoint)
        check_tcp_port(self.topology_endpoint, "the topology endpoint (by default the next "
                       "port after the publish port: publish on at most 65534)")
        if self.endpoint == self.topology_endpoint:
            raise ValueError("the topology endpoint must differ from the publish endpoint")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.sender_queue < 1:
            raise ValueError(f"sender_queue must be at least 1, got {self.sender_queue}")
        if self.sndhwm < 1:
            raise ValueError(f"sndhwm must be at least 1, got {self.sndhwm}")
        if self.topology_every_s <= 0 or self.status_every_s <= 0:
            raise ValueError("topology_every_s and status_every_s must be positive")
        if (self.curve_secret_key_file is None) != (self.curve_allowed_clients_file is None):
            raise ValueError("CURVE needs both the server's secret key file (--curve-keys) and "
                             "the allowed clients (--allowed-clients): a directory of client "
                             ".key files or a file of their public keys")
        if self.curve:
            for f in (self.curve_secret_key_file, self.curve_allowed_clients_file):
                if not Path(f).exists():
                    raise ValueError(f"CURVE key file {f}: no such file or directory (make "
                                     "keys with handmesh-stream keys DIR)")
            if not zmq.has("curve"):
                raise ValueError("CURVE keys given, but this libzmq has no CURVE support")
        remote = [ep for ep in (self.endpoint, self.topology_endpoint) if not is_loopback(ep)]
        if remote and not self.insecure and not self.curve:
            raise ValueError(f"refusing to publish unencrypted on {', '.join(remote)}: anyone "
                             "on the network could read (and act on) the hands. Bind to "
                             "127.0.0.1, give CURVE keys (--curve-keys, --allowed-clients), "
                             "or pass --insecure on a trusted network")

    @property
    def curve(self) -> bool:
        """Whether the sockets are CURVE servers (encrypted, allowed clients only)."""
        return self.curve_secret_key_file is not None

    @classmethod
    def for_endpoint(cls, endpoint: str, **fields) -> PublisherConfig:
        """A config publishing on ``endpoint``, topology requests on the endpoint beside it
        (the next tcp port, or ``<path>.topology``; ``protocol.topology_endpoint_for``)."""
        return cls(endpoint=endpoint, topology_endpoint=protocol.topology_endpoint_for(endpoint),
                   **fields)


class _NoSockets(Exception):
    """Internal: a web-only publisher skips making the ZeroMQ sockets."""


def _uv_arrays_for(mesh_sha256: str) -> dict[str, np.ndarray]:
    """The committed UV layout when it was built for this mesh, else nothing (another hand
    model, e.g. MANO, has its own UVs or none)."""
    from models.errors import AssetError
    from models.uv_layout import load_uv_layout
    from realtime.stream.texture_topic import uv_arrays

    try:
        layout = load_uv_layout(mesh_path=None)
    except AssetError:  # missing or unreadable layout: the topology simply has no UVs
        return {}
    return uv_arrays(layout) if layout.mesh_sha256 == mesh_sha256 else {}


class Publisher:
    """Publish sink for :class:`realtime.engine.pipeline.Pipeline` (``write`` / ``close``).

    ``model``: the :class:`models.hand_model.HandModel` whose meshes are published (faces,
    joint names for ``finger_angles``, name and checksum on ``topology``); without one the
    topology carries only the keypoint tree and finger angles are NaN. ``topology``: a
    recorded ``topology`` message to serve instead (stream replay, :meth:`send_raw`).
    ``camera``: the source's :class:`calibration.intrinsics.CameraIntrinsics`, sent on
    ``topology`` so that a viewer draws the hands from the camera's own view.
    """

    def __init__(self, config: PublisherConfig = PublisherConfig(), model=None,
                 context: zmq.Context | None = None, topology: bytes | None = None,
                 camera=None) -> None:
        self.config = config
        self.model = model
        self.camera = camera
        if config.insecure and config.endpoint is not None and not config.curve and not all(
                is_loopback(e) for e in (config.endpoint, config.topology_endpoint)):
            log.warning("publishing UNENCRYPTED hand data on %s (--insecure): anyone on the "
                        "network can read it", config.endpoint)
        if config.mode == "rigged" and model is None:
            raise ValueError("rigged mode sends the hand model's rig: pass the HandModel")
        self._joint_names = tuple(model.data.joint_names) if model is not None else ()
        xr = None
        if model is not None and config.xr_joints:
            from realtime.stream.openxr import openxr_tracker

            xr = openxr_tracker(model)
        self._packer = protocol.HandPacker(self._joint_names, config.float16, xr=xr)
        self._packer.warmup()  # numba: compiled or loaded from disk now, not on frame one
        self._auth = None
        self._own_ctx = None
        self._pub = self._rep = None
        server_keys = allowed = None
        if config.curve:
            from realtime.stream import keys

            try:
                server_keys = keys.load_secret(config.curve_secret_key_file)
                allowed = keys.load_allowed_clients(config.curve_allowed_clients_file)
            except keys.CurveKeyError as exc:
                raise ValueError(str(exc)) from exc
            # ZAP handlers are per context (one inproc://zeromq.zap.01 each): an own context
            # keeps this authenticator away from any other publisher's or client's.
            if context is None:
                self._own_ctx = context = zmq.Context()
        self._ctx = context or zmq.Context.instance()
        try:
            if config.endpoint is None:
                raise _NoSockets
            if config.curve:
                from zmq.auth.thread import ThreadAuthenticator

                self._auth = ThreadAuthenticator(self._ctx, log=log.getChild("auth"))
                self._auth.start()
                self._auth.configure_curve_callback(ZAP_DOMAIN, keys.AllowedClients(allowed))
                log.info("CURVE: %d allowed client key(s)", len(allowed))
            # XPUB: a PUB socket that also reports subscriptions, so a topic nobody subscribes
            # to (e.g. joints while only a Unity scene listens to hands) is not even built
            self._pub = self._ctx.socket(zmq.XPUB)
            self._pub.setsockopt(zmq.LINGER, 0)
            self._pub.setsockopt(zmq.SNDHWM, config.sndhwm)
            self._pub.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_BYTES)
            if config.conflate:
                self._pub.setsockopt(zmq.CONFLATE, 1)
            # ROUTER, not REP: REQ clients see no difference, and it lets us bound and
            # rate-limit what each peer can queue (see the module docstring)
            self._rep = self._ctx.socket(zmq.ROUTER)
            self._rep.setsockopt(zmq.LINGER, 0)
            self._rep.setsockopt(zmq.MAXMSGSIZE, TOPOLOGY_MAX_REQUEST_BYTES)
            self._rep.setsockopt(zmq.RCVHWM, TOPOLOGY_HWM)
            self._rep.setsockopt(zmq.SNDHWM, TOPOLOGY_HWM)
            self._rep.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full peer queue: zmq.Again
            if server_keys is not None:
                for sock in (self._pub, self._rep):
                    sock.curve_publickey, sock.curve_secretkey = server_keys
                    sock.curve_server = True
                    sock.zap_domain = ZAP_DOMAIN.encode()
            self._pub.bind(config.endpoint)
            self._rep.bind(config.topology_endpoint)
        except _NoSockets:  # web only: no ZeroMQ (self._pub, self._rep stay None)
            pass
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise ValueError(f"cannot bind {config.endpoint} / {config.topology_endpoint}: "
                             f"{exc}") from exc
        self._lock = threading.Lock()  # the XPUB socket: write() (or the sender) vs close()
        self._seq = {t: 0 for t in protocol.TOPICS}
        self.sent = {t.decode(): 0 for t in protocol.TOPICS}
        self.dropped = {t.decode(): 0 for t in protocol.TOPICS}
        self.topology_requests = 0  # requests answered
        self.topology_refused = 0  # requests over the rate limits, or not a REQ envelope
        self.topology_reply_dropped = 0  # answers a peer's full queue (or absence) refused
        self._limiter = _RequestLimiter(TOPOLOGY_PEER_RATE, TOPOLOGY_TOTAL_RATE,
                                        TOPOLOGY_MAX_PEERS)
        self._topology_reply: zmq.Frame | None = None
        self._subscriptions: set[bytes] = set()  # prefixes subscribed by at least one peer
        self._want = {t: False for t in protocol.TOPICS}
        self._next_subs = 0.0  # when to read the XPUB's subscription messages again
        self._topology_msg_header = self._topology_parts()
        self._web: WebGateway | None = None
        if config.web is not None:
            from realtime.stream.web_gateway import WebGateway

            try:
                self._web = WebGateway(config.web)
            except BaseException:
                self._close_sockets()
                raise
        self._topology_raw: bytes | None = None
        if topology is not None:
            self.set_topology(topology)
        else:
            self._topology_reply = zmq.Frame(self.topology_message())
        self._frames: deque[tuple[float, float]] = deque(maxlen=4096)  # (t_publish, latency)
        self._closed = threading.Event()
        now = time.monotonic()
        self._next_topology = now + config.topology_every_s
        self._next_status = now + config.status_every_s
        self._publish_topology()
        self._rep_thread = threading.Thread(target=self._serve_topology,
                                            name="topology-rep", daemon=True)
        if self._rep is not None:
            self._rep_thread.start()
        self._queue: deque[Packet] = deque()
        self._queue_cv = threading.Condition()
        self._pending = 0  # frames handed over and not yet published (sender thread)
        self.sender_cpu_s = 0.0  # CPU time the sender thread spent publishing
        self._sender = None
        if config.sender_thread:
            self._sender = threading.Thread(target=self._send_loop, name="publisher-send",
                                            daemon=True)
            self._sender.start()

    # -- topics ---------------------------------------------------------------------------
    def _next_seq(self, topic: bytes) -> int:
        self._seq[topic] += 1
        return self._seq[topic]

    def _send(self, topic: bytes, msg: bytes) -> bool:
        """Send without ever blocking; a full queue counts as dropped."""
        name = _TOPIC_NAMES.get(topic) or topic.decode()
        if self._web is not None:
            self._web.publish(msg)  # copies the bytes; never blocks (latest-only per client)
            if self._pub is None:
                self.sent[name] += 1
                return True
        try:
            with self._lock:
                self._pub.send(msg, zmq.NOBLOCK)
        except zmq.Again:
            self.dropped[name] += 1
            return False
        except zmq.ZMQError as exc:  # a closed socket during shutdown: never raise here
            self.dropped[name] += 1
            log.debug("publish %s failed: %s", name, exc)
            return False
        self.sent[name] += 1
        return True

    def _topology_parts(self) -> tuple[dict, dict]:
        header = {
            "keypoint_names": [k.name.lower() for k in Keypoint],
            "keypoint_parents": [int(p) for p in KEYPOINT_PARENTS],
            "finger_joints": list(FINGER_JOINTS),
            "winding": "faces are counter-clockwise seen from outside for right hands; "
                       "reverse each triangle (a, b, c) -> (c, b, a) for left hands",
            "units": "meters",
            "frame": "OpenCV camera: x right, y down, z forward",
            "mode": self.config.mode,
        }
        if self.camera is not None:  # the pinhole intrinsics of the source, pixels
            c = self.camera
            header["camera"] = {"fx": float(c.fx), "fy": float(c.fy), "cx": float(c.cx),
                                "cy": float(c.cy), "width": int(c.width),
                                "height": int(c.height)}
        arrays: dict[str, np.ndarray] = {}
        if self.model is not None:
            d = self.model.data
            header.update({
                "hand_model": d.name, "hand_model_sha256": d.sha256,
                "vertex_count": int(d.template.shape[0]),
                "joint_names": list(d.joint_names),
                "joint_parents": [int(p) for p in d.parents],
            })
            arrays["faces"] = np.asarray(d.faces, dtype="<i4")
            if d.uv is not None:
                arrays["uv"] = np.asarray(d.uv, dtype="<f4")
            else:  # the open hand's UV atlas (a separate asset): uv, uv_faces, uv_vertex
                arrays.update(_uv_arrays_for(d.sha256))
            if self.config.mode == "rigged":
                from realtime.stream import bones

                rig_header, rig_arrays = bones.rig_topology(self.model)
                header.update(rig_header)
                arrays.update(rig_arrays)
        else:
            header["vertex_count"] = None
        return header, arrays

    def set_topology(self, msg: bytes) -> None:
        """Serve this recorded message instead (on requests and the periodic ``topology``)."""
        if protocol.peek_topic(msg) != protocol.TOPIC_TOPOLOGY:
            raise ValueError("set_topology needs a 'topology' message, got topic "
                             f"{protocol.peek_topic(msg)!r}")
        protocol.decode(msg)  # raises ProtocolError if it is not a readable message
        self._topology_raw = bytes(msg)
        self._topology_reply = zmq.Frame(self._topology_raw)

    def topology_message(self, seq: int | None = None) -> bytes:
        if self._topology_raw is not None:
            return self._topology_raw
        header, arrays = self._topology_msg_header
        return protocol.encode(protocol.TOPIC_TOPOLOGY,
                               {"seq": seq if seq is not None else self._seq[
                                   protocol.TOPIC_TOPOLOGY], "t_publish": time.monotonic(),
                                **header}, (), arrays)

    def _publish_topology(self) -> None:
        self._send(protocol.TOPIC_TOPOLOGY,
                   self.topology_message(self._next_seq(protocol.TOPIC_TOPOLOGY)))

    def status(self) -> dict:
        """fps and latency (publish - capture, ms) over the last second; counts so far."""
        now = time.monotonic()
        recent = [lat for t, lat in self._frames if now - t <= 1.0]
        lat = np.asarray(recent) * 1000.0 if recent else np.zeros(0)
        return {
            "fps": float(len(recent)),
            "latency_ms_p50": round(float(np.median(lat)), 3) if lat.size else None,
            "latency_ms_max": round(float(lat.max()), 3) if lat.size else None,
            "frames": self._seq[protocol.TOPIC_HANDS],  # frames published, sent or not
            "sent": dict(self.sent), "dropped": dict(self.dropped),
            "topology_requests": self.topology_requests,
            "topology_refused": self.topology_refused,
        }

    def _publish_status(self) -> None:
        seq = self._next_seq(protocol.TOPIC_STATUS)
        self._send(protocol.TOPIC_STATUS, protocol.encode(
            protocol.TOPIC_STATUS, {"seq": seq, "t_publish": time.monotonic(),
                                    **self.status()}))

    # -- sink -----------------------------------------------------------------------------
    def messages(self, packet: Packet, hands: bool = True, joints: bool = True,
                 copy: bool = True, t_publish: float | None = None
                 ) -> tuple[bytes | None, bytes | None]:
        """The ``hands`` and ``joints`` messages of a packet (None for one not asked for;
        both sequence numbers advance either way: they count frames).

        Both come from one packing of each hand (``protocol.HandPacker``): a ``joints``
        message is the ``hands`` payload without its mesh (or rig) block. Two-hand frames
        in mesh mode are built in the packer's reused buffers
        (``HandPacker.two_hand_messages``); ``copy=False`` returns those buffers as they
        are (the publisher sends them at once), else bytes of their own.
        """
        t_pub = time.monotonic() if t_publish is None else t_publish
        seqs = self._seq
        seq_h = seqs[protocol.TOPIC_HANDS] = seqs[protocol.TOPIC_HANDS] + 1
        seq_j = seqs[protocol.TOPIC_JOINTS] = seqs[protocol.TOPIC_JOINTS] + 1
        self._frames.append((t_pub, t_pub - packet.t_capture))
        if not (hands or joints):
            return None, None
        frame = packet.frame
        tail = (packet.t_capture, t_pub, time.time(), frame.source, frame.index, frame.size,
                self.config.mode)
        found = packet.hands
        if len(found) == 2 and self.config.mode == "mesh":
            got = self._packer.two_hand_messages(found[0], found[1], seq_h, seq_j, tail,
                                                 hands, joints)
            if got is not None:
                if copy:
                    return tuple(None if m is None else bytes(m) for m in got)
                return got
        if self.config.mode == "rigged" and found:
            from realtime.stream import bones

            rigs = bones.rig_arrays(self.model, list(found))
            packed = [self._packer.pack(i, h, mesh=r is None, extra=r)
                      for i, (h, r) in enumerate(zip(found, rigs))]
        else:
            packed = [self._packer.pack(i, h) for i, h in enumerate(found)]
        text = protocol.frame_header_tail(*tail)
        full = protocol.encode_packed(protocol.TOPIC_HANDS, protocol.frame_header_head(
            seq_h) + text, packed) if hands else None
        light = protocol.encode_packed(protocol.TOPIC_JOINTS, protocol.frame_header_head(
            seq_j) + text, packed, extra=False) if joints else None
        return full, light

    def send_raw(self, msg: bytes) -> bool:
        """Send an already encoded message as it is (stream replay); a topology message also
        becomes the one served on request. False if it was dropped or the topic is unknown."""
        topic = protocol.peek_topic(msg)
        if topic not in protocol.TOPICS or self._closed.is_set():
            return False
        if topic == protocol.TOPIC_TOPOLOGY and msg != self._topology_raw:
            self._topology_raw = bytes(msg)
            self._topology_reply = zmq.Frame(self._topology_raw)
        return self._send(topic, msg)

    def write(self, packet: Packet) -> None:
        """Publish a frame: here, or (``sender_thread``) hand it to the sender thread."""
        if self._closed.is_set():
            return
        if self._sender is None:
            self._publish(packet)
            return
        with self._queue_cv:
            if len(self._queue) >= self.config.sender_queue:  # the sender fell behind
                self._queue.popleft()
                self._pending -= 1
                self.dropped["hands"] += 1
            self._queue.append(packet)
            self._pending += 1
            self._queue_cv.notify_all()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the sender thread has published every frame handed over so far."""
        with self._queue_cv:
            return self._queue_cv.wait_for(lambda: self._pending == 0 or self._closed.is_set(),
                                           timeout_s)

    def _send_loop(self) -> None:
        """The sender thread: publish frames in order until ``close``."""
        while True:
            with self._queue_cv:
                self._queue_cv.wait_for(lambda: self._queue or self._closed.is_set())
                if self._closed.is_set():
                    return
                packet = self._queue.popleft()
            c = time.thread_time()
            try:
                self._publish(packet)
            except Exception:  # noqa: BLE001 - the sender thread must not die silently
                log.exception("publishing frame %s failed", packet.frame.index)
            self.sender_cpu_s += time.thread_time() - c
            with self._queue_cv:
                self._pending -= 1
                self._queue_cv.notify_all()

    def _publish(self, packet: Packet) -> None:
        now = time.monotonic()
        if now >= self._next_subs:
            self._next_subs = now + SUBSCRIPTIONS_EVERY_S
            self._read_subscriptions()
        want = self._want
        want_h, want_j = want[protocol.TOPIC_HANDS], want[protocol.TOPIC_JOINTS]
        try:
            hands, joints = self.messages(packet, want_h, want_j, copy=False, t_publish=now)
        except (ValueError, TypeError) as exc:  # a hand that cannot be encoded: skip it
            log.warning("frame %s not published: %s", packet.frame.index, exc)
            self.dropped["hands"] += 1
            return
        if hands is not None:
            self._send(protocol.TOPIC_HANDS, hands)
        if joints is not None:
            self._send(protocol.TOPIC_JOINTS, joints)
        if now >= self._next_topology:
            self._next_topology = now + self.config.topology_every_s
            self._publish_topology()
        if now >= self._next_status:
            self._next_status = now + self.config.status_every_s
            self._publish_status()

    def _read_subscriptions(self) -> None:
        """Take in the subscribe/unsubscribe messages the XPUB socket queued since the last
        look (ZeroMQ passes each prefix's first subscription and its last unsubscription),
        and work out which topics anyone listens to."""
        subs = self._subscriptions
        web = self._web
        with self._lock:
            while self._pub is not None:
                try:
                    msg = self._pub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except zmq.ZMQError:  # closed during shutdown
                    return
                if msg[:1] == b"\x01":
                    subs.add(msg[1:])
                elif msg[:1] == b"\x00":
                    subs.discard(msg[1:])
        for topic in protocol.TOPICS:
            first = topic + b" "
            self._want[topic] = any(first.startswith(p) or p.startswith(first) for p in subs) \
                or (web is not None and web.wants(_TOPIC_NAMES[topic]))

    def subscribed(self, topic: str) -> bool:
        """Whether any subscriber listens to ``topic`` now (reads the pending subscription
        messages first; ZeroMQ itself delivers them a few ms after a client connects)."""
        self._read_subscriptions()
        return self._want[topic.encode()]

    # -- topology requests ----------------------------------------------------------------
    def _serve_topology(self) -> None:
        """Answer each request on the ROUTER socket with the cached topology frame.

        A REQ client's request arrives as ``[peer id, b"", request]``; the reply goes back
        as ``[peer id, b"", topology]``. At most 256 requests per wake-up, so a flood never
        holds this loop (nor the GIL) for long.
        """
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        while not self._closed.is_set():
            try:
                if not poller.poll(100):
                    continue
                for _ in range(256):
                    try:
                        frames = self._rep.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._answer(frames)
            except zmq.ZMQError as exc:
                if self._closed.is_set():
                    break
                log.debug("topology request failed: %s", exc)

    def _answer(self, frames: list[bytes]) -> None:
        if len(frames) != 3 or frames[1] != b"" or not self._limiter.allow(frames[0]):
            self.topology_refused += 1
            return
        self.topology_requests += 1  # counted before the reply: no race with it
        try:  # the cached frame: ZeroMQ shares its buffer, nothing is copied per reply
            self._rep.send_multipart([frames[0], b"", self._topology_reply], zmq.NOBLOCK,
                                     copy=False)
        except zmq.Again:  # the peer's queue is full (it does not read): drop the reply
            self.topology_reply_dropped += 1
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the peer left
            self.topology_reply_dropped += 1
            log.debug("topology reply not sent: %s", exc)

    # -- shutdown -------------------------------------------------------------------------
    def _close_sockets(self) -> None:
        """Close both sockets, then stop the authenticator and end an own context."""
        for sock in (self._pub, self._rep):
            if sock is not None and not sock.closed:
                sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()  # joins the authenticator thread
            self._auth = None
        if self._own_ctx is not None:
            self._own_ctx.term()
            self._own_ctx = None

    @property
    def web(self) -> WebGateway | None:
        """The WebSocket gateway (``config.web``), or None."""
        return self._web

    def close(self) -> None:
        """Stop the topology thread (within a second) and close both sockets, dropping queues."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._queue_cv:
            self._queue_cv.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=1.0)
        if self._rep_thread.is_alive():
            self._rep_thread.join(timeout=1.0)
        if self._web is not None:
            self._web.close()
        with self._lock:
            self._close_sockets()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
