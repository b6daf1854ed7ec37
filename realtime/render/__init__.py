"""Showing hands: the AR overlay (a Numba z-buffer rasterizer) and the Open3D 3D viewer.

``raster`` (pure drawing kernels), ``overlay`` (meshes, skeletons, labels and the HUD over a
frame), ``overlay_sink`` (the pipeline sink behind overlay.mp4, the photos' overlays and the window), ``scene``
(the viewer's pure geometry) and ``viewer`` (the Open3D window on the main thread).
"""
