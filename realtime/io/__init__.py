"""What comes in and what is written: frame sources, the camera, the hands file.

``sources`` (webcam, video, image folder and hands file behind one ``Source`` interface),
``camera`` (the camera each frame carries), ``sample`` (the built-in clip), ``hands_file``
(hands.jsonl: writer, reader, sink), ``hands_file_source`` (a hands file replayed as a
source) and ``contact_sheet``.
"""
