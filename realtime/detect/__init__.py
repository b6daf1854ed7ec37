"""Finding hands: MediaPipe's bundled hand models, on our own schedule or MediaPipe's.

``scheduled`` (the default: palm detection only when a hand is missing, both crops in one
batched landmark call) built from ``hand_rois`` (MediaPipe's calculators as pure functions),
``roi_kernels`` (their compiled per-frame form) and ``litert_models`` (the .tflite files
under LiteRT); ``mediapipe_legacy`` is ``mediapipe.solutions.hands``, the reference.
"""
