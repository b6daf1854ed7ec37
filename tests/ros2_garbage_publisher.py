"""Another participant publishing garbage on handmesh's topic names (tests/test_ros2.py):
a same-named type with another layout on joint_states, another type on wrist_pose.

    python tests/ros2_garbage_publisher.py DOMAIN SECONDS
"""

import sys
import time

from cyclonedds.idl import make_idl_struct
from cyclonedds.idl import types as t
from cyclonedds.pub import DataWriter
from cyclonedds.topic import Topic

from realtime.ros2.dds import participant, ros_qos

dp = participant(int(sys.argv[1]))
Fake = make_idl_struct("JointState_", "sensor_msgs::msg::dds_::JointState_", {"x": t.int32, "junk": str})
Other = make_idl_struct("String_", "std_msgs::msg::dds_::String_", {"data": str})
w1 = DataWriter(dp, Topic(dp, "rt/handmesh/right/joint_states", Fake), ros_qos())
w2 = DataWriter(dp, Topic(dp, "rt/handmesh/right/wrist_pose", Other), ros_qos())
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    w1.write(Fake(x=n, junk="garbage" * 50)); w2.write(Other(data="x" * 100)); n += 1
    time.sleep(0.01)
print("garbage sent", n, len(w1.get_matched_subscriptions()), len(w2.get_matched_subscriptions()))
