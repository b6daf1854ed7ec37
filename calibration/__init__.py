"""Cameras and metric hands: calibration, placement, hand profiles, several cameras.

``camera`` (the one camera record: intrinsics + distortion), ``intrinsics`` (pinhole K, a
guess from the field of view), ``camera_file`` (OpenCV-compatible YAML/JSON), ``board``,
``calibrate`` and ``extrinsics`` (ChArUco/chessboard calibration), ``placement`` (a hand in
the camera frame from its 2D landmarks), ``profile`` (the user's hand size),
``multiview`` (association, triangulation, one fit in the world frame), ``simulation``
(rendered boards and hands with known truth, for tests and benchmarks), ``cli``
(``handmesh-calibrate``). Independent of ``realtime``: it imports only ``models``.
"""

__handmesh__ = True  # marks this package as handmesh's (realtime checks it at import)
