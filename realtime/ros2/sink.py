"""The pipeline sinks of the ROS 2 output: :class:`Ros2Sink` (DDS, ``--ros2``) and
:class:`McapSink` (a ROS 2 MCAP file, ``--record-mcap``).

Both build the same messages (:class:`~realtime.ros2.messages.MessageBuilder`) and encode
them once to CDR (:func:`realtime.ros2.msgs.encode`); the DDS sink writes the bytes to its
topics, the MCAP sink stores them with the ``ros2msg`` schemas (``.msg`` text with its
dependencies) and log time = capture time, so Foxglove and ``ros2 bag`` (MCAP storage)
play the file. The MCAP writer is ``mcap``'s, used the way ``mcap_ros2.writer`` uses it
(profile ``ros2``, schema encoding ``ros2msg``, message encoding ``cdr``) but fed the
bytes already encoded, since mcap_ros2's Python encoder would spend ~50 ms on a mesh.

Neither sink stops the run: DDS missing (:func:`open_ros2_sink` returns None with one
line of reason) or a failing write (counted) leaves the other outputs running.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from realtime.ros2.messages import MessageBuilder, Ros2Config
from realtime.ros2.msgs import encode, msg_definition, ros_name
from realtime.types import Packet

log = logging.getLogger(__name__)


class Ros2Sink:
    """Publishes every packet's hands on ROS 2 topics over DDS (a publish-path sink).

    ``publish_ms``: the time each ``write`` took (building, encoding and writing every
    topic), for the benchmark; ``frames``: frames written.
    """

    def __init__(self, config: Ros2Config = Ros2Config(), model=None, faces_for=None,
                 trace_file: str | None = None) -> None:
        from realtime.ros2.dds import DdsWriters

        self.config = config
        names = tuple(model.data.joint_names) if model is not None else ()
        if faces_for is None and model is not None:
            faces_for = {s: model.faces_for(s) for s in ("right", "left")}
        self.builder = MessageBuilder(config, names, faces_for)
        self.writers = DdsWriters(config.topics(), config.domain_id, config.lan, trace_file)
        self.frames = 0
        self.publish_ms: list[float] = []

    def write(self, packet: Packet) -> None:
        self.publish(packet.hands, packet.t_capture)

    def publish(self, hands, t_capture: float | None = None) -> None:
        """Publish ``hands`` (e.g. ``HandMesher.process``'s list) captured at ``t_capture``
        (``time.monotonic()`` seconds; now when None): the library's way in."""
        t0 = time.perf_counter()
        t = time.monotonic() if t_capture is None else t_capture
        messages = self.builder.messages(t, tuple(hands))
        for topic, type_, message in messages:
            self.writers.write(topic, encode(type_, message))
        self.frames += bool(messages)
        self.publish_ms.append((time.perf_counter() - t0) * 1e3)

    def close(self) -> None:
        self.writers.close()

    def __enter__(self) -> Ros2Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ros2_sink(config: Ros2Config, model=None, faces_for=None) -> Ros2Sink | None:
    """A :class:`Ros2Sink`, or None (and a logged one-line reason) when DDS is unavailable,
    so the run goes on with its other outputs."""
    from realtime.ros2.dds import dds_unavailable

    why = dds_unavailable()
    if why is None:
        try:
            return Ros2Sink(config, model, faces_for)
        except Exception as exc:  # noqa: BLE001 - e.g. no loopback interface, bad domain
            why = f"{type(exc).__name__}: {exc}"
    log.error("ROS 2 output off: %s", why)
    return None


@dataclass(frozen=True)
class McapConfig:
    """A ROS 2 MCAP recording (``--record-mcap``): the file and the topics' names (the
    same :class:`Ros2Config` as ``--ros2``; its rates apply too); ``compression``:
    "zstd", "lz4" or "none"."""

    path: Path
    ros2: Ros2Config = field(default_factory=Ros2Config)
    compression: str = "zstd"

    def __post_init__(self) -> None:
        if Path(self.path).suffix.lower() != ".mcap":
            raise ValueError(f"the MCAP recording needs a .mcap file name, got {self.path}")
        if self.compression not in ("zstd", "lz4", "none"):
            raise ValueError(f"compression must be zstd, lz4 or none, got {self.compression}")


class McapSink:
    """Writes every packet's ROS 2 messages to an MCAP file (a record-path sink: lossless).

    The file is written as ``<name>.part`` and renamed when ``close()`` has finished it
    (summary, index, footer), so the name only ever holds a complete file; the pipeline
    closes its sinks on Ctrl-C and SIGTERM too. ``messages``: messages written.
    """

    def __init__(self, config: McapConfig, model=None, faces_for=None) -> None:
        from mcap.writer import CompressionType, Writer

        self.config = config
        names = tuple(model.data.joint_names) if model is not None else ()
        if faces_for is None and model is not None:
            faces_for = {s: model.faces_for(s) for s in ("right", "left")}
        self.builder = MessageBuilder(config.ros2, names, faces_for)
        self.path = Path(config.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(self.path.name + ".part")
        self._file = open(self._part, "wb")
        compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
                       "none": CompressionType.NONE}[config.compression]
        self._writer = Writer(self._file, compression=compression)
        self._writer.start(profile="ros2", library="handmesh (mcap)")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self.messages = 0
        self._closed = False

    def _channel(self, topic: str, type_: str) -> int:
        channel = self._channels.get(topic)
        if channel is None:
            schema = self._schemas.get(type_)
            if schema is None:
                schema = self._writer.register_schema(ros_name(type_), "ros2msg",
                                                      msg_definition(type_).encode())
                self._schemas[type_] = schema
            channel = self._writer.register_channel(topic, "cdr", schema)
            self._channels[topic] = channel
        return channel

    def write(self, packet: Packet) -> None:
        if self._closed:
            return
        stamp_ns = int(round(self.builder.stamp_s(packet) * 1e9))
        for topic, type_, message in self.builder.frame(packet):
            channel = self._channel(topic, type_)
            seq = self._seq.get(topic, 0)
            self._seq[topic] = seq + 1
            self._writer.add_message(channel, log_time=stamp_ns, data=encode(type_, message),
                                     publish_time=stamp_ns, sequence=seq)
            self.messages += 1

    def close(self) -> None:
        """Finish the file (summary and footer) and give it its name; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        os.replace(self._part, self.path)
