"""The viewer's JavaScript decoder (integrations/web/decoder.js) run by Node on messages the
real publisher encoded: every array (``<f4``, ``<f2``, ``<i4``) and header field as the
Python decoder reads them, and malformed messages refused with a ProtocolError."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.hand_model import HandModel
from realtime.stream import protocol
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.stream.web_gateway import WebConfig
from tests.test_stream import make_hand, make_packet

DECODER = Path(__file__).resolve().parents[1] / "integrations" / "web" / "decoder.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

SCRIPT = """
import { decodeMessage, ProtocolError } from "./decoder.mjs";
import { readFileSync } from "node:fs";
const out = [];
for (const path of process.argv.slice(2)) {
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  try {
    const m = decodeMessage(buf);
    const arrays = (t) => Object.fromEntries(Object.entries(t).map(
      ([k, v]) => [k, { shape: v.shape, data: Array.from(v.data, (x) => Number.isNaN(x) ? "NaN" : x),
                        kind: v.data.constructor.name }]));
    out.push({ topic: m.topic, header: m.header, arrays: arrays(m.arrays),
               hands: m.hands.map((h) => ({ handedness: h.handedness, arrays: arrays(h.arrays) })) });
  } catch (e) {
    out.push({ error: e instanceof ProtocolError ? "ProtocolError" : String(e) });
  }
}
console.log(JSON.stringify(out));
"""


def run_node(tmp_path: Path, messages: list[bytes]) -> list[dict]:
    shutil.copy(DECODER, tmp_path / "decoder.mjs")
    (tmp_path / "run.mjs").write_text(SCRIPT)
    paths = []
    for i, m in enumerate(messages):
        p = tmp_path / f"m{i}.bin"
        p.write_bytes(bytes(m))
        paths.append(str(p))
    out = subprocess.run([NODE, str(tmp_path / "run.mjs"), *paths], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def as_array(js: dict) -> np.ndarray:
    data = [np.nan if x == "NaN" else x for x in js["data"]]
    return np.asarray(data, dtype=np.float64).reshape(js["shape"])


@pytest.mark.parametrize("float16", [False, True])
def test_js_decoder_reads_what_python_reads(tmp_path, float16):
    model = HandModel.open_hand()
    hands = [make_hand(model, "right", 1), make_hand(model, "left", 2)]
    with Publisher(PublisherConfig(endpoint=None, topology_endpoint=None, float16=float16,
                                   web=WebConfig(port=0)), model) as pub:
        full, light = pub.messages(make_packet(hands, 3))
        one, _ = pub.messages(make_packet(hands[:1], 4))
        topo = pub.topology_message()
    messages = [full, light, one, topo]
    decoded = run_node(tmp_path, messages)
    for raw, js in zip(messages, decoded):
        py = protocol.decode(raw)
        assert js["topic"] == py.topic
        assert js["header"]["seq"] == py.header["seq"]
        for name, arr in py.arrays.items():
            kind = "Int32Array" if arr.dtype.kind == "i" else "Float32Array"
            assert js["arrays"][name]["kind"] == kind, name
            assert np.array_equal(as_array(js["arrays"][name]), arr.astype(np.float64)), name
        assert len(js["hands"]) == len(py.hands)
        for jh, ph in zip(js["hands"], py.hands):
            assert jh["handedness"] == ph["handedness"]
            names = [k for k, v in ph.items() if isinstance(v, np.ndarray)]
            assert set(jh["arrays"]) == set(names)
            for name in names:  # <f2 widened exactly to float32
                assert np.array_equal(as_array(jh["arrays"][name]),
                                      ph[name].astype(np.float64), equal_nan=True), name
    if float16:
        assert protocol.decode(full).hands[0]["vertices"].dtype == np.float16


def test_js_decoder_refuses_malformed_messages(tmp_path):
    model = HandModel.open_hand()
    with Publisher(PublisherConfig(endpoint=None, topology_endpoint=None,
                                   web=WebConfig(port=0)), model) as pub:
        full, _ = pub.messages(make_packet([make_hand(model)], 3))
    full = bytes(full)
    space = full.index(b" ")
    bad = [
        b"",                                   # nothing
        b"hands",                              # no space, no header
        full[: len(full) // 2],                # truncated payload
        full[: space + 3],                     # truncated header length
        full[: space + 1] + (10**6).to_bytes(4, "little") + full[space + 5:],  # header > 64 kB
        full[: space + 5] + b"{not json" + full[space + 14:],
    ]
    decoded = run_node(tmp_path, bad)
    assert [d.get("error") for d in decoded] == ["ProtocolError"] * len(bad)
