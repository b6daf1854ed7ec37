"""The real-time engine: stage threads, latest-frame mailboxes, latency statistics, Ctrl-C.

``pipeline`` runs capture -> processors -> sinks in threads and knows only the typed records
of ``realtime.types``; ``mailbox`` holds the one-slot and lossless channels between them;
``stages`` wrap the detector, the estimator and the smoother as the per-frame callables the
pipeline (and ``HandMesher``) runs; ``stats`` measures every stage; ``interrupts`` marks
Ctrl-C.
"""
