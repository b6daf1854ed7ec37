"""ROS 2 output without a ROS install: hands as standard ROS 2 messages over Cyclone DDS
(``--ros2``) and in MCAP files (``--record-mcap``). See docs/ros2.md.

* :mod:`realtime.ros2.msgs` — the message definitions (``.msg`` text, DDS types, CDR);
* :mod:`realtime.ros2.messages` — :class:`Ros2Config` and what each frame publishes;
* :mod:`realtime.ros2.dds` — the loopback-only DDS configuration and the writers;
* :mod:`realtime.ros2.sink` — the pipeline sinks (:class:`Ros2Sink`, :class:`McapSink`);
* :mod:`realtime.ros2.listen` — a subscriber with the ROS 2 types (tests, benchmark, you).

``python -m realtime.ros2 config [--lan]`` prints the Cyclone DDS XML a ROS 2 node needs
(``CYCLONEDDS_URI``) to talk to us; ``python -m realtime.ros2 echo TOPIC`` prints messages.
"""

from realtime.ros2.messages import Ros2Config
from realtime.ros2.sink import McapConfig, McapSink, Ros2Sink, open_ros2_sink

__all__ = ["McapConfig", "McapSink", "Ros2Config", "Ros2Sink", "open_ros2_sink"]
