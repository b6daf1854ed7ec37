"""What comes in and what is written: frame sources, the hands file and its replay.

``sources`` (webcam, video, image folder, and a hands file replayed as a source, behind one
``Source`` interface), ``camera`` (the camera each frame carries), ``sample`` (the built-in
clip), ``hands_file`` (hands.jsonl: writer, reader, sink), ``hands_replay`` and
``contact_sheet``.
"""
