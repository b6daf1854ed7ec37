# HandMeshReceiver: the hand stream over WebSocket -> one ArrayMesh per hand.
#
# Connects to the gateway (handmesh --web PORT) at `url`, asks for the `hands` and
# `topology` topics, decodes each binary message (hand_stream_decoder.gd) and keeps one
# MeshInstance per track: its mesh holds the vertices as sent (camera axes: x right, y down,
# z forward, meters) and its transform the rotation to Godot's (x, -y, -z), so the hand sits
# in this node's frame with +Y up and the camera at the origin looking down -Z.
# Reconnects after a loss. The OpenXR joints, when the stream has them, are in
# `xr_joints[track_id]` (26 {"transform", "radius"}, XrHandJointEXT order).
#
# Godot 3.2+ (WebSocketClient); for Godot 4 see README.md (WebSocketPeer, Node3D, signals).
# Headless use (tests): command-line arguments --hm-url=, --hm-dump=FILE (binary record
# of every decoded hands message), --hm-frames=N (quit after N), --hm-timeout=S,
# --hm-file=FILE (decode length-prefixed messages from a file instead of a socket).
extends Spatial

signal hands_updated(seq, hands)

const Decoder = preload("res://hand_stream_decoder.gd")

export var url := "ws://127.0.0.1:8765/ws?topics=hands,topology"
export var token := ""  # the gateway's --web-token, when it has one
export var reconnect_s := 1.0
export var hand_material: Material

var frames := 0            # hands messages decoded
var last_seq := -1
var errors := 0
var xr_joints := {}        # track_id -> Array of 26 {"transform", "radius"}
var faces_right := PoolIntArray()  # Godot's front faces are clockwise: see _on_topology
var faces_left := PoolIntArray()
var meshes := {}           # track_id -> MeshInstance

var _ws: WebSocketClient
var _retry_at := 0.0
var _dump: File
var _quit_after := 0
var _deadline := 0.0


func _ready() -> void:
	var file_path := ""
	for arg in OS.get_cmdline_args():
		if arg.begins_with("--hm-url="):
			url = arg.substr(9, arg.length())
		elif arg.begins_with("--hm-dump="):
			_dump = File.new()
			if _dump.open(arg.substr(10, arg.length()), File.WRITE) != OK:
				push_error("cannot write " + arg.substr(10, arg.length()))
				get_tree().quit(2)
				return
		elif arg.begins_with("--hm-frames="):
			_quit_after = int(arg.substr(12, arg.length()))
		elif arg.begins_with("--hm-timeout="):
			_deadline = OS.get_ticks_msec() / 1000.0 + float(arg.substr(13, arg.length()))
		elif arg.begins_with("--hm-file="):
			file_path = arg.substr(10, arg.length())
	if file_path != "":
		_read_file(file_path)
		_finish()
		return
	_connect()


func _connect() -> void:
	_ws = WebSocketClient.new()
	# hands and topology messages are tens to hundreds of KiB: room for them (KiB, packets)
	_ws.set_buffers(4096, 64, 64, 16)
	_ws.connect("connection_established", self, "_on_connected")
	_ws.connect("connection_closed", self, "_on_closed")
	_ws.connect("connection_error", self, "_on_error")
	var full := url
	if token != "":
		full += ("&" if "?" in url else "?") + "token=" + token.percent_encode()
	if _ws.connect_to_url(full) != OK:
		_retry_later()


func _on_connected(_protocol: String) -> void:
	_ws.get_peer(1).set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)


func _on_closed(_clean: bool) -> void:
	_retry_later()


func _on_error() -> void:
	_retry_later()


func _retry_later() -> void:
	_ws = null
	_retry_at = OS.get_ticks_msec() / 1000.0 + reconnect_s


func _process(_delta: float) -> void:
	var now := OS.get_ticks_msec() / 1000.0
	if _deadline > 0.0 and now > _deadline:
		_finish()
		return
	if _ws == null:
		if _retry_at > 0.0 and now >= _retry_at:
			_retry_at = 0.0
			_connect()
		return
	_ws.poll()
	if _ws == null:
		return
	var peer := _ws.get_peer(1)
	while _ws != null and peer.get_available_packet_count() > 0:
		handle_message(peer.get_packet())
		if _quit_after > 0 and frames >= _quit_after:
			_finish()
			return


# One message of the stream (WebSocket or file): topology -> faces, hands -> meshes.
func handle_message(bytes: PoolByteArray) -> void:
	var msg := Decoder.decode(bytes)
	if msg.has("error"):
		errors += 1
		return
	if msg["topic"] == "topology":
		_on_topology(msg)
	elif msg["topic"] == "hands":
		_on_hands(msg)


func _on_topology(msg: Dictionary) -> void:
	var arrays = msg["header"].get("arrays", {})
	if typeof(arrays) != TYPE_DICTIONARY or not arrays.has("faces"):
		return
	var faces := Decoder.read_ints(msg, arrays["faces"])
	# faces are counter-clockwise seen from outside for a right hand in the camera frame
	# (a left hand, mirrored, the other way round); Godot's front faces are clockwise (the
	# node's rotation to Godot axes keeps the sense), so right hands take them reversed,
	# left hands as sent
	var rev := PoolIntArray()
	rev.resize(faces.size())
	for t in range(0, faces.size() - 2, 3):
		rev[t] = faces[t + 2]
		rev[t + 1] = faces[t + 1]
		rev[t + 2] = faces[t]
	faces_right = rev
	faces_left = faces


func _on_hands(msg: Dictionary) -> void:
	var header: Dictionary = msg["header"]
	var hands = header.get("hands", [])
	if typeof(hands) != TYPE_ARRAY:
		errors += 1
		return
	var seen := {}
	var decoded := []
	for hand in hands:
		if typeof(hand) != TYPE_DICTIONARY or typeof(hand.get("arrays")) != TYPE_DICTIONARY:
			continue
		var arrays: Dictionary = hand["arrays"]
		var track := int(hand.get("track_id", -1))
		var side: String = str(hand.get("handedness", "right"))
		var verts := PoolVector3Array()
		if arrays.has("vertices"):
			verts = Decoder.read_vectors(msg, arrays["vertices"])
		if arrays.has("xr_joints"):
			xr_joints[track] = Decoder.read_xr_joints(msg, arrays["xr_joints"])
		seen[track] = true
		if verts.size() > 0:
			_update_mesh(track, side, verts)
		decoded.append({"track_id": track, "handedness": side, "vertices": verts})
	for track in meshes.keys():  # hands that left the picture
		if not seen.has(track):
			meshes[track].queue_free()
			meshes.erase(track)
			xr_joints.erase(track)
	frames += 1
	last_seq = int(header.get("seq", -1))
	if _dump != null:
		_write_dump(last_seq, decoded)
	emit_signal("hands_updated", last_seq, decoded)


func _update_mesh(track: int, side: String, verts: PoolVector3Array) -> void:
	var faces := faces_left if side == "left" else faces_right
	var arrays := []
	arrays.resize(Mesh.ARRAY_MAX)
	arrays[Mesh.ARRAY_VERTEX] = verts
	if faces.size() > 0 and faces.size() % 3 == 0:
		arrays[Mesh.ARRAY_INDEX] = faces
	var inst: MeshInstance = meshes.get(track)
	if inst == null:
		inst = MeshInstance.new()
		inst.name = "hand_%d" % track
		inst.mesh = ArrayMesh.new()
		inst.transform = Transform(Decoder.CAMERA_TO_GODOT, Vector3())
		if hand_material != null:
			inst.material_override = hand_material
		add_child(inst)
		meshes[track] = inst
	var mesh: ArrayMesh = inst.mesh
	while mesh.get_surface_count() > 0:  # Godot 4: mesh.clear_surfaces()
		mesh.surface_remove(0)
	var prim := Mesh.PRIMITIVE_TRIANGLES if faces.size() > 0 else Mesh.PRIMITIVE_POINTS
	mesh.add_surface_from_arrays(prim, arrays)


# Binary dump of a decoded hands message, read back from the mesh and node that were built:
# int32 seq, int32 hands, then per hand int32 track_id, int32 side (0 right, 1 left),
# int32 vertices, int32 indices, float32 node basis (3x3, row-major), float32 x y z per
# vertex (mesh, camera axes; Godot's = basis * v), int32 OpenXR joints (0 or 26), per joint
# float32 origin xyz, quaternion xyzw (of the Transform), radius.
func _write_dump(seq: int, decoded: Array) -> void:
	_dump.store_32(seq)
	_dump.store_32(decoded.size())
	for hand in decoded:
		var track: int = hand["track_id"]
		var verts := PoolVector3Array()
		var indices := 0
		var basis := Basis()
		if meshes.has(track):
			var arrays: Array = meshes[track].mesh.surface_get_arrays(0)
			verts = arrays[Mesh.ARRAY_VERTEX]
			if arrays[Mesh.ARRAY_INDEX] != null:
				indices = arrays[Mesh.ARRAY_INDEX].size()
			basis = meshes[track].transform.basis
		_dump.store_32(track)
		_dump.store_32(1 if hand["handedness"] == "left" else 0)
		_dump.store_32(verts.size())
		_dump.store_32(indices)
		for r in range(3):  # basis.x/.y/.z are its columns (Godot 3 and 4)
			_dump.store_float(basis.x[r])
			_dump.store_float(basis.y[r])
			_dump.store_float(basis.z[r])
		var raw := var2bytes(verts)  # type, length, then the floats: skip the 8 header bytes
		if verts.size() > 0:
			_dump.store_buffer(raw.subarray(8, raw.size() - 1))
		var xr: Array = xr_joints.get(track, [])
		_dump.store_32(xr.size())
		for joint in xr:
			var t: Transform = joint["transform"]
			var q: Quat = t.basis.get_rotation_quat()  # Godot 4: t.basis.get_rotation_quaternion()
			for x in [t.origin.x, t.origin.y, t.origin.z, q.x, q.y, q.z, q.w, joint["radius"]]:
				_dump.store_float(x)


# Messages from a file: uint32 LE length + message, repeated (tests feed the encoder's bytes).
func _read_file(path: String) -> void:
	var f := File.new()
	if f.open(path, File.READ) != OK:
		push_error("cannot read " + path)
		errors += 1
		return
	while f.get_position() + 4 <= f.get_len():
		var n := f.get_32()
		handle_message(f.get_buffer(n))
		if _quit_after > 0 and frames >= _quit_after:
			break
	f.close()


func _finish() -> void:
	if _dump != null:
		_dump.close()
		_dump = null
	print("handmesh: frames=%d last_seq=%d errors=%d" % [frames, last_seq, errors])
	get_tree().quit(0)
