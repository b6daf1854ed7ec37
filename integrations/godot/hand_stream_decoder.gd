# Decodes one message of the hand stream (docs/protocol.md): one frame of
#   topic (ASCII) | " " | header length (uint32 LE) | JSON header | payload (arrays)
# every array described in the header by dtype ("<f4", "<f2", "<i4"), shape, offset (from
# the payload start) and nbytes. The WebSocket gateway sends each message as one binary
# WebSocket message, byte for byte the ZeroMQ one.
#
# Godot 3 API; the Godot 4 spellings are noted where they differ (README.md).
extends Reference

const MAX_TOPIC := 32


# A decoded message: {"topic", "header", "payload" (offset), "buffer" (StreamPeerBuffer),
# "size"}; or {"error": reason} for bytes that are not a message.
static func decode(bytes: PoolByteArray) -> Dictionary:
	var n := bytes.size()
	var sp := -1
	for i in range(min(n, MAX_TOPIC)):
		if bytes[i] == 32:
			sp = i
			break
	if sp <= 0 or sp + 5 > n:
		return {"error": "no topic"}
	var topic := bytes.subarray(0, sp - 1).get_string_from_ascii()
	var buf := StreamPeerBuffer.new()
	buf.data_array = bytes  # little-endian by default (big_endian = false)
	buf.seek(sp + 1)
	var hlen := buf.get_u32()
	var start := sp + 5
	if hlen == 0 or start + hlen > n:
		return {"error": "header length %d does not fit %d bytes" % [hlen, n]}
	var text := bytes.subarray(start, start + hlen - 1).get_string_from_utf8()
	var parsed := JSON.parse(text)  # Godot 4: JSON.parse_string(text)
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
		return {"error": "header is not a JSON object"}
	return {"topic": topic, "header": parsed.result, "payload": start + hlen, "buffer": buf,
			"size": n}


# Number of elements of an array spec; -1 if the spec is unusable or outside the message.
static func _count(msg: Dictionary, spec) -> int:
	if typeof(spec) != TYPE_DICTIONARY or not spec.has("shape") or not spec.has("offset"):
		return -1
	var count := 1
	for d in spec["shape"]:
		count *= int(d)
	var size := 4
	if spec.get("dtype", "") == "<f2":
		size = 2
	var off := int(msg["payload"]) + int(spec["offset"])
	if count < 0 or off < int(msg["payload"]) or off + count * size > int(msg["size"]):
		return -1
	return count


# IEEE half (binary16) bits -> float (exact).
static func half_to_float(h: int) -> float:
	var e := (h >> 10) & 0x1f
	var m := h & 0x3ff
	var v: float
	if e == 0:
		v = m * pow(2.0, -24)
	elif e == 31:
		v = NAN if m != 0 else INF
	else:
		v = (1.0 + m / 1024.0) * pow(2.0, e - 15)
	return -v if h & 0x8000 else v


# Camera axes (x right, y down, z forward) -> Godot's (x right, y up, -z forward): a
# rotation (half a turn about x), so windings keep their sense. Hand meshes are kept in
# camera axes and their node carries this basis.
const CAMERA_TO_GODOT := Basis(Vector3(1, 0, 0), Vector3(0, -1, 0), Vector3(0, 0, -1))


# The bytes of `count` 4-byte items of an array as a Godot pool array of variant type
# `type` in one native call: var2bytes' layout of a pool array is its type (int32), its
# length (int32) and the little-endian items, which is the stream's layout once prefixed.
static func _pool(msg: Dictionary, spec, type: int, count: int, item: int):
	var head := StreamPeerBuffer.new()
	head.put_32(type)
	head.put_32(count)
	var off := int(msg["payload"]) + int(spec["offset"])
	var raw: PoolByteArray = msg["buffer"].data_array
	var out := head.data_array
	if count > 0:
		out.append_array(raw.subarray(off, off + count * item - 1))
	return bytes2var(out)  # Godot 4: bytes_to_var(out), or raw.slice(..).to_float32_array()


# A float array ("<f4" or "<f2") as a flat PoolRealArray; empty if unusable.
static func read_floats(msg: Dictionary, spec) -> PoolRealArray:
	var count := _count(msg, spec)
	if count < 0:
		return PoolRealArray()
	if spec["dtype"] == "<f4":
		return _pool(msg, spec, TYPE_REAL_ARRAY, count, 4)
	var out := PoolRealArray()
	if spec["dtype"] == "<f2":
		var buf: StreamPeerBuffer = msg["buffer"]
		buf.seek(int(msg["payload"]) + int(spec["offset"]))
		out.resize(count)
		for i in range(count):
			out[i] = half_to_float(buf.get_u16())
	return out


# An (N,3) float array of points as Godot vectors, in the stream's camera axes (x right,
# y down, z forward; CAMERA_TO_GODOT turns them into Godot's). Empty if unusable.
static func read_vectors(msg: Dictionary, spec) -> PoolVector3Array:
	var count := _count(msg, spec)
	if count < 0 or count % 3 != 0:
		return PoolVector3Array()
	if spec["dtype"] == "<f4":
		return _pool(msg, spec, TYPE_VECTOR3_ARRAY, count / 3, 12)
	var out := PoolVector3Array()
	if spec["dtype"] == "<f2":
		var buf: StreamPeerBuffer = msg["buffer"]
		buf.seek(int(msg["payload"]) + int(spec["offset"]))
		out.resize(count / 3)
		for i in range(count / 3):
			var x := half_to_float(buf.get_u16())
			var y := half_to_float(buf.get_u16())
			var z := half_to_float(buf.get_u16())
			out[i] = Vector3(x, y, z)
	return out


# An "<i4" array as a flat PoolIntArray; empty if unusable.
static func read_ints(msg: Dictionary, spec) -> PoolIntArray:
	var count := _count(msg, spec)
	if count < 0 or spec.get("dtype", "") != "<i4":
		return PoolIntArray()
	return _pool(msg, spec, TYPE_INT_ARRAY, count, 4)


# The 26 OpenXR joints ("xr_joints" (26,8): position, quaternion xyzw, radius; OpenXR axes,
# which are Godot's: right-handed, +Y up, -Z forward, meters) as
# [{"transform": Transform, "radius": float}, ...] in XrHandJointEXT order; [] if absent.
static func read_xr_joints(msg: Dictionary, spec) -> Array:
	var out := []
	var f := read_floats(msg, spec)
	if f.size() != 26 * 8:
		return out
	for j in range(26):
		var k := j * 8
		var q := Quat(f[k + 3], f[k + 4], f[k + 5], f[k + 6])
		var t := Transform(Basis(q), Vector3(f[k], f[k + 1], f[k + 2]))
		out.append({"transform": t, "radius": f[k + 7]})
	return out
