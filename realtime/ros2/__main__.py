"""``python -m realtime.ros2``: the DDS configuration for ROS 2 nodes, and a topic echo.

::

    python -m realtime.ros2 config [--lan] > ~/handmesh_dds.xml   # for CYCLONEDDS_URI
    python -m realtime.ros2 topics                                # names and types
    python -m realtime.ros2 echo /handmesh/right/wrist_pose [--domain 0] [--count 5]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from realtime.ros2.dds import config_xml, dds_unavailable
    from realtime.ros2.messages import Ros2Config
    from realtime.ros2.msgs import ros_name

    p = argparse.ArgumentParser(prog="python -m realtime.ros2", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("config", help="print the Cyclone DDS XML (loopback unless --lan)")
    c.add_argument("--lan", action="store_true")
    t = sub.add_parser("topics", help="list the topics and their ROS 2 types")
    t.add_argument("--namespace", default=Ros2Config.namespace)
    e = sub.add_parser("echo", help="print the messages of one topic")
    e.add_argument("topic")
    e.add_argument("--domain", type=int, default=0)
    e.add_argument("--namespace", default=Ros2Config.namespace)
    e.add_argument("--lan", action="store_true")
    e.add_argument("--count", type=int, default=None)
    a = p.parse_args(argv)
    if a.cmd == "config":
        print(config_xml(a.lan))
        return 0
    config = Ros2Config(namespace=a.namespace)
    types = {s.name: s.type for s in config.topics()}
    if a.cmd == "topics":
        for name, type_ in types.items():
            print(f"{name}  {ros_name(type_)}")
        return 0
    if a.topic not in types:
        print(f"error: {a.topic} is not one of ours ({', '.join(types)})", file=sys.stderr)
        return 2
    why = dds_unavailable()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    from realtime.ros2.listen import Listener

    listener = Listener({a.topic: types[a.topic]}, a.domain, a.lan)
    n = 0
    try:
        while a.count is None or n < a.count:
            listener.wait(0.5)
            for _, msg, _ in listener.take():
                print(msg, flush=True)
                n += 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
