"""``handmesh-stream``: the tools around the published hand stream.

::

    handmesh-stream listen [--endpoint tcp://127.0.0.1:5555]        # print what arrives
    handmesh-stream record --connect tcp://127.0.0.1:5555 --out run.hmstream
    handmesh-stream replay run.hmstream --publish tcp://127.0.0.1:5555
    handmesh-stream keys DIR [--name client-robot]                  # CURVE key pairs

The work is done by :mod:`realtime.stream` (``client``, ``record``, ``replay``, ``keys``);
this module parses arguments and prints. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from realtime.errors import RealtimeError
from realtime.stream.record import DEFAULT_TOPICS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="handmesh-stream",
                                description="Listen to, record, replay and secure the hand "
                                            "stream of `handmesh --publish`")
    sub = p.add_subparsers(dest="command", required=True)
    curve = argparse.ArgumentParser(add_help=False)
    curve.add_argument("--curve-key", type=Path, default=None, metavar="CLIENT_SECRET_FILE",
                       help="this client's .key_secret (a publisher with CURVE keys)")
    curve.add_argument("--server-key", type=Path, default=None, metavar="SERVER_PUBLIC_FILE",
                       help="the publisher's server.key (with --curve-key)")

    li = sub.add_parser("listen", parents=[curve], help="print one line per received frame")
    li.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    li.add_argument("--topology-endpoint", default=None, help="default: the next port")
    li.add_argument("--joints-only", action="store_true", help="subscribe to 'joints'")
    li.add_argument("--conflate", action="store_true", help="latest message only")
    li.add_argument("--count", type=int, default=None, help="stop after N messages")

    rec = sub.add_parser("record", parents=[curve], help="record the stream to a .hmstream file")
    rec.add_argument("--connect", default="tcp://127.0.0.1:5555", metavar="ENDPOINT")
    rec.add_argument("--topology-endpoint", default=None,
                     help="the publisher's REP endpoint (default: the next port)")
    rec.add_argument("--out", type=Path, required=True, help="the .hmstream file (appended to)")
    rec.add_argument("--topics", default=",".join(DEFAULT_TOPICS),
                     help="comma-separated topics (default hands,topology,status)")
    rec.add_argument("--count", type=int, default=None, help="stop after N hands messages")
    rec.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    rec.add_argument("--fsync", action="store_true", help="force every record to disk")

    rep = sub.add_parser("replay", help="publish a .hmstream file again at its recorded pace")
    rep.add_argument("recording", type=Path)
    rep.add_argument("--publish", default=None, metavar="ENDPOINT",
                     help="ZeroMQ endpoint (default tcp://127.0.0.1:5555; none with --web "
                          "unless given)")
    rep.add_argument("--web", default=None, metavar="[HOST:]PORT",
                     help="also serve the replay over WebSocket and the browser viewer")
    rep.add_argument("--web-token", default=None, metavar="TOKEN",
                     help="required for a non-loopback --web host")
    rep.add_argument("--topology-endpoint", default=None,
                     help="REP endpoint for topology requests (default: the next port)")
    rep.add_argument("--speed", type=float, default=1.0)
    rep.add_argument("--loop", action="store_true", help="start over at the end")
    rep.add_argument("--max-gap", type=float, default=1.0, metavar="S",
                     help="cut longer pauses in the recording to S seconds (default 1)")
    rep.add_argument("--insecure", action="store_true",
                     help="allow a non-loopback --publish without encryption")

    keys = sub.add_parser("keys", help="make a CURVE key pair: NAME.key and NAME.key_secret")
    keys.add_argument("directory", type=Path)
    keys.add_argument("--name", default="server", help="'server' (default) or 'client-NAME'")
    keys.add_argument("--force", action="store_true", help="replace an existing key pair")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done (Ctrl-C or SIGTERM ends listen/record/replay normally, the
    recording flushed), 2 bad input, 130/143 when a signal lands before the work began."""
    from realtime.engine import interrupts

    interrupts.install()  # SIGTERM stops a recording like Ctrl-C: flushed, not cut off
    a = parser().parse_args(argv)
    try:
        return {"listen": listen, "record": record, "replay": replay, "keys": keys}[a.command](a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return interrupts.exit_code()


def listen(a: argparse.Namespace) -> int:
    from realtime.stream.client import HandClient, summary
    from realtime.stream.protocol import SchemaMismatch

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    topic = "joints" if a.joints_only else "hands"
    try:
        client = HandClient(a.endpoint, (topic, "status"), a.topology_endpoint, a.conflate,
                            curve_secret_key_file=a.curve_key,
                            curve_server_public_key_file=a.server_key)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with client:
        try:
            topo = client.topology()
            print(f"topology: {topo.header.get('hand_model')} "
                  f"{topo.header.get('vertex_count')} vertices, "
                  f"{len(topo.arrays.get('faces', []))} faces")
        except RealtimeError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        n = 0
        try:
            for msg in client:
                if msg.topic == "status":
                    print(f"status: {msg.header.get('fps')} fps, dropped "
                          f"{msg.header.get('dropped')}, missed here {client.missed}, "
                          f"rejected here {client.rejected}")
                else:
                    print(summary(msg))
                    n += 1
                if a.count is not None and n >= a.count:
                    break
        except KeyboardInterrupt:
            pass
        except SchemaMismatch as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            if client.rejected:
                print(f"skipped {client.rejected} bad message(s); the last: "
                      f"{client.last_error}", file=sys.stderr)
    return 0


def record(a: argparse.Namespace) -> int:
    from realtime.stream.client import HandClient
    from realtime.stream.protocol import topology_endpoint_for
    from realtime.stream.record import record as record_stream
    from realtime.stream.stream_file import StreamFileError, StreamWriter

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    try:
        topics = tuple(t for t in a.topics.split(",") if t)
        with HandClient(a.connect, topics, a.topology_endpoint or topology_endpoint_for(
                a.connect), curve_secret_key_file=a.curve_key,
                curve_server_public_key_file=a.server_key) as client, \
                StreamWriter(a.out, fsync=a.fsync) as writer:
            print(f"recording {', '.join(topics)} from {a.connect} to {a.out} (Ctrl-C stops)")
            try:
                n = record_stream(client, writer, stop, a.count, a.duration)
            except KeyboardInterrupt:
                n = writer.records
            rejected = client.rejected
        print(f"wrote {n} records to {a.out}"
              + (f" (skipped {rejected} bad messages)" if rejected else ""))
    except (OSError, StreamFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def replay(a: argparse.Namespace) -> int:
    from realtime.stream.publisher import Publisher, PublisherConfig
    from realtime.stream.replay import ReplayConfig, first_topology, replayable
    from realtime.stream.replay import replay as replay_stream
    from realtime.stream.stream_file import StreamFileError

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    try:
        config = ReplayConfig(speed=a.speed, loop=a.loop, max_gap_s=a.max_gap)
        scanned = replayable(a.recording)
        from realtime.stream.web_gateway import web_config

        web = web_config(a.web, a.web_token)
        endpoint = a.publish or (None if web is not None else "tcp://127.0.0.1:5555")
        if endpoint is None:
            pub_config = PublisherConfig(endpoint=None, topology_endpoint=None, web=web)
        elif a.topology_endpoint:
            pub_config = PublisherConfig(endpoint, a.topology_endpoint, insecure=a.insecure,
                                         web=web)
        else:
            pub_config = PublisherConfig.for_endpoint(endpoint, insecure=a.insecure, web=web)
        with Publisher(pub_config, topology=first_topology(a.recording, scanned)) as pub:
            skipped = scanned.summary()
            where = [w for w in (endpoint, pub.web and pub.web.url) if w]
            print(f"replaying {len(scanned.records)} messages from {a.recording}"
                  + (f" ({skipped})" if skipped else "") + f" on {' and '.join(where)}",
                  flush=True)
            try:
                n = replay_stream(a.recording, pub, config, scanned=scanned)
            except KeyboardInterrupt:
                n = None
        print(f"sent {n if n is not None else 'some'} messages"
              + (f"; skipped {scanned.damaged_records} damaged records"
                 if scanned.damaged else ""))
    except (OSError, StreamFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def keys(a: argparse.Namespace) -> int:
    from realtime.stream.keys import generate, load_public

    try:
        public, secret = generate(a.directory, a.name, a.force)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    key = load_public(public).decode()
    print(f"public key  {public}  ({key})")
    print(f"secret key  {secret}  (mode 600: keep it on this machine)")
    if a.name == "server":
        print("publisher: --curve-keys", secret, "--allowed-clients <dir or file of client "
              "public keys>; give", public, "to every client")
    else:
        print(f"add {public} (or the line {key}) to the publisher's allowed clients; "
              f"this client connects with {secret} and the server's server.key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
