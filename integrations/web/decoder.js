// Decoder of the handmesh stream message (docs/protocol.md), for browsers.
//
// One WebSocket binary message = one ZeroMQ message, byte for byte:
//   topic (ASCII) | 0x20 | header length (uint32 LE) | JSON header | payload
// Every array is described in the header: {dtype: "<f4" | "<f2" | "<i4", shape, offset, nbytes},
// offset from the payload start (a multiple of 8 from the message start, so typed arrays
// view the buffer without copying; "<f2" is widened to Float32Array).

const MAX_HEADER_BYTES = 64 << 10;
const ITEM = { "<f4": 4, "<f2": 2, "<i4": 4 };
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const textDecoder = new TextDecoder("utf-8", { fatal: true });

export class ProtocolError extends Error {}

/** IEEE 754 half (as uint16) -> number. */
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** One array of the payload: {data: Float32Array | Int32Array, shape}. */
export function readArray(buffer, payloadStart, desc, name) {
  const { dtype, shape, offset, nbytes } = desc || {};
  const item = ITEM[dtype];
  if (!item || !Array.isArray(shape) || !Number.isInteger(offset) || !Number.isInteger(nbytes)) {
    throw new ProtocolError(`array ${name}: bad description`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(count) || count < 0 || count * item !== nbytes) {
    throw new ProtocolError(`array ${name}: nbytes ${nbytes} does not match shape ${shape}`);
  }
  const start = payloadStart + offset;
  if (offset < 0 || start + nbytes > buffer.byteLength) {
    throw new ProtocolError(`array ${name}: past the end of the message`);
  }
  let data;
  if (dtype === "<f2") {
    const dv = new DataView(buffer, start, nbytes);
    data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = halfToFloat(dv.getUint16(2 * i, true));
  } else if (LITTLE_ENDIAN && start % item === 0) {
    data = dtype === "<f4" ? new Float32Array(buffer, start, count)
                           : new Int32Array(buffer, start, count);
  } else {
    const dv = new DataView(buffer, start, nbytes);
    data = dtype === "<f4" ? new Float32Array(count) : new Int32Array(count);
    for (let i = 0; i < count; i++) {
      data[i] = dtype === "<f4" ? dv.getFloat32(4 * i, true) : dv.getInt32(4 * i, true);
    }
  }
  return { data, shape };
}

function readTable(buffer, payloadStart, table) {
  const out = {};
  for (const [name, desc] of Object.entries(table || {})) {
    out[name] = readArray(buffer, payloadStart, desc, name);
  }
  return out;
}

/** ArrayBuffer -> {topic, header, hands: [{...fields, arrays}], arrays, bytes}. */
export function decodeMessage(buffer) {
  const bytes = new Uint8Array(buffer);
  const space = bytes.subarray(0, 33).indexOf(0x20);
  if (space <= 0) throw new ProtocolError("no topic");
  const topic = String.fromCharCode(...bytes.subarray(0, space));
  if (bytes.length < space + 5) throw new ProtocolError("truncated header length");
  const headerLength = new DataView(buffer).getUint32(space + 1, true);
  const headerStart = space + 5;
  const payloadStart = headerStart + headerLength;
  if (headerLength > MAX_HEADER_BYTES) throw new ProtocolError("header over 64 kB");
  if (payloadStart > bytes.length) throw new ProtocolError("truncated header");
  let header;
  try {
    header = JSON.parse(textDecoder.decode(bytes.subarray(headerStart, payloadStart)));
  } catch (e) {
    throw new ProtocolError(`bad JSON header: ${e.message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new ProtocolError("header is not an object");
  }
  if (header.schema !== undefined && header.schema !== 1) {
    throw new ProtocolError(`schema ${header.schema}, this viewer reads 1`);
  }
  const hands = (Array.isArray(header.hands) ? header.hands : []).map((h) => ({
    ...h, arrays: readTable(buffer, payloadStart, h.arrays),
  }));
  return { topic, header, hands, arrays: readTable(buffer, payloadStart, header.arrays),
           bytes: buffer.byteLength };
}

/**
 * Camera intrinsics from the hands: keypoints_2d are the joints projected with K (pinhole),
 * so u = fx x/z + cx and v = fy y/z + cy, solved by least squares over every joint.
 * Returns {fx, fy, cx, cy} or null when there are too few points or the fit is not sane.
 */
export function intrinsicsFromHands(hands) {
  const sx = [0, 0, 0, 0, 0], sy = [0, 0, 0, 0, 0];  // n, Σa, Σa², Σb, Σab (+ .sq: Σb²)
  sx.sq = 0; sy.sq = 0;
  for (const h of hands) {
    const j = h.arrays.joints, k = h.arrays.keypoints_2d;
    if (!j || !k) continue;
    for (let i = 0; i < j.data.length / 3; i++) {
      const z = j.data[3 * i + 2];
      if (!(z > 1e-4)) continue;
      const ax = j.data[3 * i] / z, ay = j.data[3 * i + 1] / z;
      const u = k.data[2 * i], v = k.data[2 * i + 1];
      if (!Number.isFinite(u + v + ax + ay)) continue;
      sx[0]++; sx[1] += ax; sx[2] += ax * ax; sx[3] += u; sx[4] += ax * u; sx.sq += u * u;
      sy[0]++; sy[1] += ay; sy[2] += ay * ay; sy[3] += v; sy[4] += ay * v; sy.sq += v * v;
    }
  }
  const solve = ([n, a, aa, b, ab]) => {
    const det = n * aa - a * a;
    if (n < 6 || Math.abs(det) < 1e-9) return null;
    const f = (n * ab - a * b) / det;
    return [f, (b - f * a) / n];
  };
  const x = solve(sx), y = solve(sy);
  if (!x || !y || !(x[0] > 1) || !(y[0] > 1) || x[0] / y[0] > 2 || y[0] / x[0] > 2) return null;
  // keypoints_2d that are not projections of joints (another publisher) fit badly: refuse
  const rms = (s, [f, c]) => Math.sqrt(Math.max(0, (s[2] * f * f + 2 * f * c * s[1] + s[0] * c * c
    - 2 * f * s[4] - 2 * c * s[3] + s.sq) / s[0]));
  if (rms(sx, x) > 2 || rms(sy, y) > 2) return null;  // pixels
  return { fx: x[0], cx: x[1], fy: y[0], cy: y[1] };
}
