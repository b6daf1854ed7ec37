"""Several cameras: camera nodes publish landmarks, a fusion node triangulates and fits.

``landmark_stream`` holds the ``landmarks`` message, the camera node and the fusion node;
the geometry (association, triangulation, the world-frame fit) is ``calibration.multiview``.
"""
