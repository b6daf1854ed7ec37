"""What comes in and what is written: frame sources, the camera, the hands file.

``sources`` (webcam, video, image folder and hands file behind one ``Source`` interface),
``camera`` (the camera each frame carries), ``sample`` (the built-in clip), ``hands_file``
(hands.jsonl: writer, reader, sink; ``fixed_point_kernels`` writes its meshes),
``hands_file_source`` (a hands file replayed as a source), ``contact_sheet``,
``photo_overlays`` (one overlay image per input photo), ``letterbox`` (fitting an image into
a fixed frame) and ``outputs`` (written partial, renamed into place at the end).
"""
