"""A web-only publisher in its own process for tests that measure its memory: it prints
its port, publishes two-hand frames at ~30 Hz until stdin closes, then prints its counters
as one JSON line (frames published, connections, drops)."""

from __future__ import annotations

import json
import sys
import threading
import time

from models.hand_model import HandModel
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.stream.web_gateway import WebConfig
from tests.test_stream import make_hand, make_packet


def main() -> None:
    model = HandModel.open_hand()
    hands = [make_hand(model, "right", 1), make_hand(model, "left", 2)]
    pub = Publisher(PublisherConfig(endpoint=None, topology_endpoint=None,
                                    web=WebConfig(port=0)), model)
    stop = threading.Event()

    def loop() -> None:
        i = 0
        while not stop.wait(1 / 30):
            pub.write(make_packet(hands, i))
            i += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    print(pub.web.port, flush=True)
    sys.stdin.read()
    stop.set()
    t.join()
    print(json.dumps({"frames": pub.status()["frames"], "connections": pub.web.connections,
                      "clients": pub.web.clients, "dropped": dict(pub.web.dropped)}),
          flush=True)
    pub.close()


if __name__ == "__main__":
    main()
