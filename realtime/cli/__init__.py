"""The command lines: ``handmesh`` (the demo), ``handmesh-stream``; argument parsing only."""
