"""The real-time engine: stage threads, latest-frame mailboxes, latency statistics, Ctrl-C.

``pipeline`` runs capture -> processors -> sinks in threads; ``mailbox`` holds the one-slot
and lossless channels between them; ``stages`` are the per-frame callables the pipeline
runs; ``stats`` measures every stage; ``interrupts`` marks Ctrl-C and SIGTERM.
Nothing here knows what a hand is beyond the typed records of ``realtime.types``.
"""
