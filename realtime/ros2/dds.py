"""Cyclone DDS for the ROS 2 output: the network configuration and raw CDR writers.

**Network discipline.** :func:`config_xml` keeps DDS on this machine by default: the only
interface is loopback (127.0.0.1), multicast is off (so no discovery packet leaves the host),
and participants find each other by unicast to 127.0.0.1 (Cyclone probes the ports of
participant indices 0..``MAX_PARTICIPANTS``). ``lan=True`` lets Cyclone pick the machine's
network interface and discover peers by multicast, as a stock ROS 2 install does.

A ROS 2 node on the same machine sees us only with a matching configuration: export the
same XML (``python -m realtime.ros2 config > ~/handmesh_dds.xml``) and run the node with
``RMW_IMPLEMENTATION=rmw_cyclonedds_cpp CYCLONEDDS_URI=file://$HOME/handmesh_dds.xml``
(docs/ros2.md).

**Writers.** :class:`DdsWriters` makes one DataWriter per topic (``rt/<name>``, ROS 2's
prefix) with the ROS 2 types of :mod:`realtime.ros2.msgs` and writes pre-encoded CDR bytes
through cyclonedds' C layer (``ddspy_write``, what ``DataWriter.write`` calls after its
own, slow, Python serialisation), so a frame costs one C call per topic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_PARTICIPANTS = 32
"""Highest participant index probed by unicast discovery on loopback (processes on the
same domain beyond this many are not found)."""


def config_xml(lan: bool = False, trace_file: str | None = None,
               trace_verbosity: str = "config") -> str:
    """The Cyclone DDS configuration: loopback only (default) or the LAN; ``trace_file``:
    Cyclone's trace (``config`` verbosity lists the chosen interface and addresses)."""
    if lan:
        general = "<General><AllowMulticast>spdp</AllowMulticast></General>"
        discovery = "<Discovery><ParticipantIndex>auto</ParticipantIndex></Discovery>"
    else:
        general = ("<General><Interfaces><NetworkInterface address=\"127.0.0.1\"/></Interfaces>"
                   "<AllowMulticast>false</AllowMulticast>"
                   # loopback's MTU is 64 kB: a mesh marker in ~10 datagrams instead of ~140
                   "<MaxMessageSize>65000B</MaxMessageSize><FragmentSize>60000B</FragmentSize>"
                   "</General>")
        discovery = ("<Discovery><ParticipantIndex>auto</ParticipantIndex>"
                     f"<MaxAutoParticipantIndex>{MAX_PARTICIPANTS}</MaxAutoParticipantIndex>"
                     "<Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>")
    tracing = (f"<Tracing><Verbosity>{trace_verbosity}</Verbosity>"
               f"<OutputFile>{trace_file}</OutputFile></Tracing>" if trace_file else "")
    return ("<CycloneDDS xmlns=\"https://cdds.io/config\"><Domain Id=\"any\">"
            f"{general}{discovery}{tracing}</Domain></CycloneDDS>")


def is_loopback_only(xml: str) -> bool:
    """Whether a configuration from :func:`config_xml` keeps DDS on this machine."""
    return ("<NetworkInterface address=\"127.0.0.1\"/>" in xml
            and "<AllowMulticast>false</AllowMulticast>" in xml
            and "<Peer address=\"127.0.0.1\"/>" in xml)


def dds_unavailable() -> str | None:
    """None when cyclonedds imports and its C library loads; else the reason, one line."""
    try:
        import cyclonedds.domain  # noqa: F401 - loads the bundled libddsc
        from cyclonedds.pub import ddspy_write  # noqa: F401
    except ImportError as exc:
        return f"cyclonedds is not installed ({exc}); pip install cyclonedds==11.0.1"
    except Exception as exc:  # noqa: BLE001 - a wheel missing its libddsc raises other kinds
        return f"cyclonedds cannot load its library ({type(exc).__name__}: {exc})"
    return None


@dataclass(frozen=True)
class TopicSpec:
    """A topic as ROS 2 names it (``/handmesh/right/joint_states``), its type
    (``sensor_msgs/JointState``) and history depth."""

    name: str
    type: str
    depth: int = 10


_DOMAINS: dict[int, tuple[str, object]] = {}


def participant(domain_id: int = 0, lan: bool = False, trace_file: str | None = None):
    """A DomainParticipant on ``domain_id`` with :func:`config_xml`. A process configures
    a domain once: asking again with another configuration raises ValueError."""
    from cyclonedds.domain import Domain, DomainParticipant

    xml = config_xml(lan, trace_file)
    known = _DOMAINS.get(domain_id)
    if known is None:
        _DOMAINS[domain_id] = (xml, Domain(domain_id, xml))  # kept alive for the process
    elif known[0] != xml:
        raise ValueError(f"DDS domain {domain_id} is already configured differently in this "
                         "process (loopback vs LAN)")
    return DomainParticipant(domain_id)


def ros_qos(depth: int = 10):
    """ROS 2's default QoS: reliable, volatile, keep last ``depth``."""
    from cyclonedds.core import Policy
    from cyclonedds.qos import Qos
    from cyclonedds.util import duration

    return Qos(Policy.Reliability.Reliable(duration(milliseconds=100)),
               Policy.Durability.Volatile, Policy.History.KeepLast(depth))


def dds_topic_name(ros_topic: str) -> str:
    """``/handmesh/right/joint_states`` -> ``rt/handmesh/right/joint_states``."""
    return "rt/" + ros_topic.lstrip("/")


class DdsWriters:
    """One DataWriter per topic; ``write(name, cdr_bytes)`` never raises (failures are
    counted in ``errors`` and logged once)."""

    def __init__(self, topics: list[TopicSpec], domain_id: int = 0, lan: bool = False,
                 trace_file: str | None = None) -> None:
        from cyclonedds.pub import DataWriter, ddspy_write
        from cyclonedds.topic import Topic

        from realtime.ros2.msgs import idl_type

        self._write_c = ddspy_write
        self.participant = participant(domain_id, lan, trace_file)
        self._writers: dict[str, object] = {}
        self._refs: dict[str, int] = {}
        for spec in topics:
            topic = Topic(self.participant, dds_topic_name(spec.name), idl_type(spec.type))
            writer = DataWriter(self.participant, topic, ros_qos(spec.depth))
            self._writers[spec.name] = writer
            self._refs[spec.name] = writer._ref
        self.errors = 0
        self.sent = 0

    def write(self, name: str, data: bytes) -> bool:
        try:
            ret = self._write_c(self._refs[name], data)
        except Exception as exc:  # noqa: BLE001 - never break the loop for an output
            ret = -1
            if not self.errors:
                log.warning("DDS write on %s failed: %s", name, exc)
        if ret < 0:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def matched(self, name: str) -> int:
        """How many readers are matched to the topic (0: nobody listens)."""
        return len(self._writers[name].get_matched_subscriptions())

    def close(self) -> None:
        """Delete the participant (and its writers); idempotent."""
        if self.participant is not None:
            self._writers.clear()
            self._refs.clear()
            self.participant = None  # the last reference: cyclonedds deletes it (dds_delete)
