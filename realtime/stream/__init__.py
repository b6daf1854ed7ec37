"""Hands to other programs over ZeroMQ: the protocol, the publisher, the client, stream files.

``protocol`` (one-frame messages: JSON header + little-endian arrays), ``pack_kernels``
(the compiled two-hand packer), ``publisher`` (the XPUB sink), ``client`` (the decoder
and ``handmesh-stream listen``), ``keys`` (CURVE keys), ``bones`` (rigged mode:
joint rotations and skin weights), ``texture_topic``, ``stream_file`` (.hmstream) and the
``record``/``replay`` tools.
"""
