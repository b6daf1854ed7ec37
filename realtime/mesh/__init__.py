"""From detections to metric hand meshes in the camera frame, and what refines them.

``estimator`` (the ``HandEstimator`` protocol and the choice between them), ``regressor``
(the learned ONNX regressor, the default), ``ik_fit`` (the fitting baseline), ``profiled``
(a user's hand profile), ``tracking`` (track ids and settled handedness), ``smoothing``
(One-Euro), ``two_hands`` (no interpenetration, the interaction prior) and ``texture``
(occlusion-aware per-vertex colour).
"""
