"""A DDS subscriber with ROS 2's types: what a ROS 2 node would receive, without ROS.

Used by the tests, ``benchmarks/ros2.py`` and ``python -m realtime.ros2 echo``. Samples
arrive already checked by DDS (a sample that does not deserialise as the topic's type is
dropped by Cyclone); :meth:`Listener.take` also drops samples that fail cyclonedds'
Python deserialisation, counting them in ``invalid``, and skips the data-less samples
that say a writer went away, so garbage never reaches a caller.
"""

from __future__ import annotations

import time

from realtime.ros2.dds import dds_topic_name, participant, ros_qos
from realtime.ros2.msgs import idl_type


class Listener:
    """Readers on ``topics`` (``{ros_topic: short_type}``) with ROS 2's default QoS."""

    def __init__(self, topics: dict[str, str], domain_id: int = 0, lan: bool = False,
                 depth: int = 100) -> None:
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        self.participant = participant(domain_id, lan)
        self.readers = {}
        for name, type_ in topics.items():
            topic = Topic(self.participant, dds_topic_name(name), idl_type(type_))
            self.readers[name] = DataReader(self.participant, topic, ros_qos(depth))
        self.invalid = 0

    def matched(self) -> dict[str, int]:
        """Writers matched per topic."""
        return {n: len(r.get_matched_publications()) for n, r in self.readers.items()}

    def wait_matched(self, timeout_s: float = 10.0, topics=None) -> bool:
        """Wait until every topic (or those in ``topics``) has a writer."""
        end = time.monotonic() + timeout_s
        want = list(topics or self.readers)
        while time.monotonic() < end:
            m = self.matched()
            if all(m[t] for t in want):
                return True
            time.sleep(0.02)
        return False

    def take(self) -> list[tuple[str, object, float]]:
        """Every sample waiting: ``(topic, message, time.time() when taken)``."""
        out = []
        for name, reader in self.readers.items():
            try:
                samples = reader.take(N=256)
            except Exception:  # noqa: BLE001 - a sample our types cannot read
                self.invalid += 1
                continue
            now = time.time()
            # invalid samples carry no data: a writer went away (unregistered), nothing more
            out.extend((name, s, now) for s in samples if getattr(s, "sample_info", None)
                       is not None and s.sample_info.valid_data)
        return out

    def take_raw(self) -> list[tuple[str, bytes, float]]:
        """Every valid sample waiting, undecoded: ``(topic, CDR bytes, time.time())``. For
        counting and timing big messages (decoding a mesh marker in Python takes ~0.1 s)."""
        from cyclonedds.core import InstanceState, SampleState, ViewState
        from cyclonedds.sub import ddspy_take

        mask = SampleState.Any | ViewState.Any | InstanceState.Any
        out = []
        for name, reader in self.readers.items():
            ret = ddspy_take(reader._ref, mask, 256)
            if isinstance(ret, int):
                self.invalid += 1
                continue
            now = time.time()
            out.extend((name, bytes(data), now) for data, info in ret if info.valid_data)
        return out

    def wait(self, timeout_s: float) -> None:
        """Block until a sample arrives on any topic (or ``timeout_s``)."""
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.util import duration

        if getattr(self, "_waitset", None) is None:
            self._waitset = WaitSet(self.participant)
            self._conditions = []
            for reader in self.readers.values():
                cond = ReadCondition(reader, SampleState.NotRead | ViewState.Any
                                     | InstanceState.Any)
                self._waitset.attach(cond)
                self._conditions.append(cond)
        self._waitset.wait(duration(microseconds=int(timeout_s * 1e6)))

    def close(self) -> None:
        self._waitset = None
        self._conditions = []
        self.readers.clear()
        self.participant = None
