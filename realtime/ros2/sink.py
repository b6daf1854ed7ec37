"""The pipeline sinks of the ROS 2 output: :class:`Ros2Sink` (DDS, ``--ros2``) and
:class:`McapSink` (a ROS 2 MCAP file, ``--record-mcap``).

Both build the same messages (:class:`~realtime.ros2.messages.MessageBuilder`) and encode
them once to CDR (:func:`realtime.ros2.msgs.encode`); the DDS sink writes the bytes to its
topics, the MCAP sink stores them with the ``ros2msg`` schemas (``.msg`` text with its
dependencies) and log time = capture time, so Foxglove and ``ros2 bag`` (MCAP storage)
play the file. The MCAP writer is ``mcap``'s, used the way ``mcap_ros2.writer`` uses it
(profile ``ros2``, schema encoding ``ros2msg``, message encoding ``cdr``) but fed the
bytes already encoded, since mcap_ros2's Python encoder spends ~75 ms on one mesh marker.

Neither sink stops the run: DDS missing (:func:`open_ros2_sink` returns None with one
line of reason) or a failing DDS write (counted) leaves the other outputs running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from realtime.ros2.messages import MessageBuilder, Ros2Config
from realtime.ros2.msgs import encode, msg_definition, ros_name
from realtime.types import Packet

log = logging.getLogger(__name__)


class Ros2Sink:
    """Publishes every packet's hands on ROS 2 topics over DDS (a publish-path sink).

    With ``Ros2Config.sender_thread`` (the default) ``write`` only hands the hands over to a
    thread of the sink's own, which builds, encodes and writes every topic (a DDS write
    sends synchronously, ~50 µs per topic on loopback); the queue holds
    ``Ros2Config.send_queue`` frames and drops the oldest when the sender falls behind
    (counted in ``dropped``). Without it, ``write`` does all that in the caller's thread.

    ``publish_ms``: what each ``write`` cost its caller; ``send_ms``/``send_cpu_ms``: what
    each frame cost the thread that built and wrote it (wall, CPU); ``write_ms``: of that,
    the DDS writes alone; ``frames``: frames sent; ``last_topics``: the last frame's topics.
    """

    def __init__(self, config: Ros2Config | None = None, model=None, faces_for=None,
                 trace_file: str | None = None) -> None:
        from realtime.ros2.dds import DdsWriters

        config = config if config is not None else Ros2Config()
        self.config = config
        names = tuple(model.data.joint_names) if model is not None else ()
        if faces_for is None and model is not None:
            faces_for = {s: model.faces_for(s) for s in ("right", "left")}
        xr = None
        if config.openxr and model is not None:
            from realtime.stream.openxr import openxr_tracker

            xr = openxr_tracker(model)
        self.builder = MessageBuilder(config, names, faces_for, xr=xr)
        self.writers = DdsWriters(config.topics(), config.domain_id, config.lan, trace_file)
        self.frames = 0
        self.dropped = 0
        self.publish_ms: list[float] = []
        self.send_ms: list[float] = []
        self.send_cpu_ms: list[float] = []
        self.write_ms: list[float] = []
        self.last_topics: list[str] = []
        self.on_sent = None  # called with (t_capture, topics) after each frame (benchmark)
        self._queue: deque = deque()
        self._wake = threading.Condition()
        self._busy = False
        self._closing = False
        self._thread = None
        if config.sender_thread:
            self._thread = threading.Thread(target=self._send_loop, name="ros2-sender",
                                            daemon=True)
            self._thread.start()

    def write(self, packet: Packet) -> None:
        self.publish(packet.hands, packet.t_capture)

    def publish(self, hands, t_capture: float | None = None) -> None:
        """Publish ``hands`` (e.g. ``HandMesher.process``'s list) captured at ``t_capture``
        (``time.monotonic()`` seconds; now when None): the library's way in."""
        t0 = time.perf_counter()
        t = time.monotonic() if t_capture is None else t_capture
        if self._thread is None:
            self._send(tuple(hands), t)
        else:
            with self._wake:
                if len(self._queue) >= self.config.send_queue:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append((tuple(hands), t))
                self._wake.notify()
        self.publish_ms.append((time.perf_counter() - t0) * 1e3)

    def _send(self, hands: tuple, t: float) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        messages = self.builder.messages(t, hands)
        encoded = [(topic, encode(type_, message)) for topic, type_, message in messages]
        t1 = time.perf_counter()
        for topic, data in encoded:
            self.writers.write(topic, data)
        t2 = time.perf_counter()
        self.last_topics = [m[0] for m in messages]
        self.frames += bool(messages)
        if self.on_sent is not None:
            self.on_sent(t, self.last_topics)
        self.write_ms.append((t2 - t1) * 1e3)
        self.send_ms.append((t2 - t0) * 1e3)
        self.send_cpu_ms.append((time.thread_time() - c0) * 1e3)

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
                hands, t = self._queue.popleft()
                self._busy = True
            try:
                self._send(hands, t)
            except Exception:
                log.exception("ROS 2 output: a frame failed")
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every frame handed over is written; False on timeout."""
        end = time.monotonic() + timeout_s
        with self._wake:
            while self._queue or self._busy:
                left = end - time.monotonic()
                if left <= 0 or self._thread is None:
                    return not (self._queue or self._busy)
                self._wake.wait(left)
        return True

    def close(self) -> None:
        """Send what is queued, stop the thread, delete the DDS participant; idempotent."""
        if self._thread is not None:
            with self._wake:
                self._closing = True
                self._wake.notify_all()
            self._thread.join(5.0)
            self._thread = None
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
        xr = None
        if config.ros2.openxr and model is not None:
            from realtime.stream.openxr import openxr_tracker

            xr = openxr_tracker(model)
        self.builder = MessageBuilder(config.ros2, names, faces_for, xr=xr)
        self.path = Path(config.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(self.path.name + ".part")
        self._file = open(self._part, "wb")  # noqa: SIM115 - closed by close()
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
        stamp_ns = round(self.builder.stamp_s(packet) * 1e9)
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
