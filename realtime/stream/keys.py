"""CURVE keys for the hand stream: make them, load them, list the allowed clients.

::

    handmesh-stream keys keys/                      # keys/server.key(_secret)
    handmesh-stream keys keys/ --name client-robot  # keys/client-robot.key(_secret)

Each key pair is two files made by ``zmq.auth.create_certificates``: ``NAME.key`` holds the
public key (safe to copy anywhere) and ``NAME.key_secret`` the public and secret keys
(readable by its owner only, mode 600; never copy it off the machine it belongs to).

* The publisher needs ``server.key_secret`` (``--curve-keys``) and the allowed clients
  (``--allowed-clients``): a directory of client ``.key`` files, or a text file with one
  z85 public key (40 characters) per line; ``# ...`` lines are comments, and so is text
  after a key and a space (``#`` is also a z85 character, so never glue it to a key).
* Each client needs its own ``client-NAME.key_secret`` and the server's public key,
  ``server.key``.

See ``docs/protocol.md`` (Security).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(server|client-[A-Za-z0-9_.-]+)$")


class CurveKeyError(ValueError):
    """A key file that is missing, unreadable or not a CURVE key."""


def generate(directory: str | os.PathLike, name: str = "server",
             overwrite: bool = False) -> tuple[Path, Path]:
    """Make ``NAME.key`` (public) and ``NAME.key_secret`` (mode 600) in ``directory``."""
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r}: use 'server' or 'client-NAME' (letters, digits, "
                         "'_', '.', '-')")
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = d / f"{name}.key", d / f"{name}.key_secret"
    if not overwrite and (public.exists() or secret.exists()):
        raise FileExistsError(f"{public} or {secret} already exists (pass --force to replace "
                              "it: clients holding the old public key will be refused)")
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        pub_file, sec_file = zmq.auth.create_certificates(d, name)
    finally:
        os.umask(old)
    os.chmod(sec_file, 0o600)
    os.chmod(pub_file, 0o644)
    return Path(pub_file), Path(sec_file)


def _check_z85(key: bytes, where: str) -> bytes:
    if len(key) != 40:
        raise CurveKeyError(f"{where}: a CURVE key in z85 is 40 characters, got {len(key)}")
    try:
        if len(z85.decode(key)) != 32:
            raise ValueError
    except Exception as exc:
        raise CurveKeyError(f"{where}: {key!r} is not a z85 CURVE key") from exc
    return key


def load_secret(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a ``.key_secret`` file, which must be private
    (:func:`check_private`)."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read the secret key file {path}: {exc}") from exc
    if not public or not secret:
        raise CurveKeyError(f"{path} has no secret key: pass the .key_secret file, not the "
                        ".key file")
    check_private(path)
    return _check_z85(public, str(path)), _check_z85(secret, str(path))


def check_private(path: str | os.PathLike) -> None:
    """A secret key file readable by every user, or writable by anyone but its owner, is
    refused, as ssh refuses such private keys: anyone on the machine could take the key
    (and act as the server or an allowed client) or replace it. Readable by its group
    (mode 640, e.g. a service group) is accepted with a warning. POSIX only."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP):
        raise CurveKeyError(f"{path}: the secret key file has mode {mode:04o}, readable or "
                            "writable by other users, who could take or replace the key; "
                            f"run `chmod 600 {path}`")
    if mode & stat.S_IRGRP:
        log.warning("%s: the secret key file is readable by its group (mode %04o); "
                    "`chmod 600 %s` keeps it to its owner", path, mode, path)


def load_public(path: str | os.PathLike) -> bytes:
    """The z85 public key of a ``.key`` (or ``.key_secret``) file, or of a one-line file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise CurveKeyError(f"cannot read the public key file {path}: {exc}") from exc
    if "public-key" in text:
        try:
            public, _ = zmq.auth.load_certificate(p)
        except ValueError as exc:
            raise CurveKeyError(f"{path}: {exc}") from exc
        return _check_z85(public, str(path))
    keys = _key_lines(text, str(path))
    if len(keys) != 1:
        raise CurveKeyError(f"{path}: expected one public key, found {len(keys)}")
    return keys[0]


def _key_lines(text: str, where: str) -> list[bytes]:
    """One z85 key per line. '#' is also a z85 character, so a comment is a line whose first
    word starts with '#' and is not 40 characters long (``# ...``), or text after a key and
    whitespace (``KEY  # robot arm``)."""
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split(None, 1)
        if not words or (words[0].startswith("#") and len(words[0]) != 40):
            continue
        if len(words) > 1 and not words[1].startswith("#"):
            raise CurveKeyError(f"{where}:{n}: one key per line (a comment after a key "
                                "starts with '#')")
        keys.append(_check_z85(words[0].encode("ascii", "replace"), f"{where}:{n}"))
    return keys


def load_allowed_clients(path: str | os.PathLike) -> frozenset[bytes]:
    """The allowed clients' z85 public keys: a directory of ``.key`` files, a ``.key``
    file, or a text file with one key per line (``#`` comments). Never empty."""
    p = Path(path)
    if p.is_dir():
        try:
            keys = frozenset(zmq.auth.load_certificates(p))
        except (OSError, ValueError) as exc:
            raise CurveKeyError(f"cannot read the client keys in {p}: {exc}") from exc
        for k in keys:
            _check_z85(k, str(p))
        where = f"no client .key files in {p}"
    elif p.is_file():
        text = p.read_text()
        keys = frozenset([load_public(p)] if "public-key" in text else _key_lines(text, str(p)))
        where = f"no client public keys in {p}"
    else:
        raise CurveKeyError(f"allowed clients {p}: no such file or directory")
    if not keys:
        raise CurveKeyError(f"{where}: nobody could connect (make one with python -m "
                        "realtime.stream.keys generate DIR --name client-NAME)")
    return keys


class AllowedClients:
    """``ThreadAuthenticator.configure_curve_callback`` provider: a fixed set of keys."""

    def __init__(self, keys: frozenset[bytes]) -> None:
        self.keys = frozenset(keys)

    def callback(self, domain: str, key: bytes) -> bool:
        # pyzmq hands the key over as raw 32 bytes; the files hold z85 text
        return (z85.encode(key) if len(key) == 32 else key) in self.keys
