// HandMeshReceiver: live hands from handmesh (docs/protocol.md, schema 1) in a Unity scene.
//
// Needs NetMQ (and its AsyncIO dependency) in the project: see README.md next to this file.
// Not compiled in the handmesh repository (no Unity/.NET there): report problems upstream.
//
// Threads: a background thread owns every NetMQ socket (SUB for frames, REQ for the
// topology), parses messages into plain arrays and hands only the newest frame to the main
// thread under a lock. The main thread (Update) touches Unity objects only.
//
// AXES. handmesh sends meters in the OpenCV camera frame: x right, y DOWN, z forward
// (right-handed). Unity is left-handed: x right, y UP, z forward. The same physical point is
// therefore (x, -y, z) in Unity, relative to the camera; this script applies exactly that to
// every vertex and joint, and parents the hands to `cameraTransform` (place that transform
// where the real camera is, looking along its +z).
// Because Unity is left-handed, a triangle that is counter-clockwise seen from outside in
// handmesh's frame must be listed clockwise in Unity (Unity's front faces are clockwise), so
// the winding is reversed once for the handedness change. The docs also say to reverse each
// triangle for LEFT hands (their meshes are mirrored). Both together: right hands use the
// topology's faces reversed, left hands use them as sent.
//
// RIGGED MODE (handmesh --publish-mode rigged): hands carry no vertices but per-joint
// rotations (unit quaternions x, y, z, w; local, in the hand model's axes), a model-to-camera
// rotation and translation, and shape coefficients; the topology carries the rest mesh,
// shape directions, rest joints, joint tree and per-vertex skinning weights. SkinRigged()
// below skins on the CPU in handmesh's right-handed frames, float32, then converts to
// Unity axes like every other point. realtime/stream/bones.py:skin_rigged is its line-by-line Python
// twin; tests/test_unity_script.py compiles this file against stub NetMQ/Unity types and
// checks that both give the same vertices for the same messages.
//
// OPENXR JOINTS. When the publisher sends them (`xr_joints`, docs/openxr.md), the 26 hand
// joints of XR_EXT_hand_tracking are available per hand through TryGetXRJoint(handedness,
// id, out Pose, out radius), with `id` an XRHandJointID value of Unity XR Hands (Wrist = 1,
// Palm = 2, ThumbMetacarpal = 3 ... LittleTip = 26: Unity lists the wrist before the palm,
// OpenXR the palm first). This is a plain API, not an XR Hands subsystem provider. The
// stream gives them in OpenXR axes (right-handed, +Y up, -Z forward, camera-relative);
// Unity is left-handed with +Z forward, so positions become (x, y, -z) and quaternions
// (-x, -y, z, w) (the mirror z -> -z applied on both sides of the rotation). A joint's
// forward (+Z) then points along the bone towards the fingertip and its up (+Y) out of the
// back of the hand, Unity XR Hands' convention; poses are camera-local (cameraTransform).

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using NetMQ;
using NetMQ.Sockets;
using UnityEngine;
using UnityEngine.Rendering;

public class HandMeshReceiver : MonoBehaviour
{
    [Header("Stream")]
    [Tooltip("The publisher's PUB endpoint (handmesh --publish).")]
    public string endpoint = "tcp://127.0.0.1:5555";
    [Tooltip("The publisher's REP endpoint for topology requests (the next port).")]
    public string topologyEndpoint = "tcp://127.0.0.1:5556";
    [Tooltip("Subscribe to 'joints' (no vertices, ~1 kB per hand) and draw spheres at the 21 joints.")]
    public bool jointsOnly = false;

    [Header("Scene")]
    [Tooltip("The transform of the real camera; hands are its children. Empty: this GameObject.")]
    public Transform cameraTransform;
    public Material rightHandMaterial;
    public Material leftHandMaterial;
    public Material jointMaterial;
    [Tooltip("Joint sphere diameter, meters (joints-only mode).")]
    public float jointDiameter = 0.012f;
    [Tooltip("Remove a track's objects after it has been missing this long, seconds.")]
    public float removeAfterSeconds = 2f;

    [Header("CURVE (remote publisher; leave empty on 127.0.0.1)")]
    [Tooltip("The publisher's public key, Z85 (40 characters).")]
    public string serverPublicKey = "";
    [Tooltip("This client's public key, Z85 (listed in the publisher's allowed clients).")]
    public string clientPublicKey = "";
    [Tooltip("This client's secret key, Z85. Keep it out of version control.")]
    public string clientSecretKey = "";

    [Header("Diagnostics (read only)")]
    public long received;
    public long missed;
    public long rejected;
    public string lastError = "";

    public const int SchemaVersion = 1;

    // ---- parsed data, built on the background thread ----------------------------------
    public sealed class HandData
    {
        public int trackId;
        public string handedness = "right";
        public float score = float.NaN;
        public float meanStd = float.NaN;
        public Vector3[] joints;    // Unity axes, meters, camera-local
        public Vector3[] vertices;  // null on the joints topic and in rigged mode
        // rigged mode (null otherwise)
        public float[] rotations;         // (J,4) x, y, z, w
        public float[] modelRotation;     // (3,3) row-major
        public float[] modelTranslation;  // (3,)
        public float[] shape;             // (S,)
        public float[] xrJoints;          // (26,8) OpenXR joints as sent, or null
    }

    public sealed class FrameData
    {
        public long seq;
        public List<HandData> hands = new List<HandData>();
    }

    public sealed class TopologyData
    {
        public int vertexCount;
        public int[] faces;  // as sent: (F,3) flattened, CCW from outside for right hands
        public Vector2[] uv;
        // rigged mode (restVertices == null otherwise)
        public float[] restVertices;    // (V,3) model frame, meters
        public float[] shapeDirs;       // (V,3,S)
        public float[] restJoints;      // (J,3)
        public float[] jointShapeDirs;  // (J,3,S)
        public int[] parents;           // (J,) -1 for the root
        public int[] skinJoints;        // (V,K)
        public float[] skinWeights;     // (V,K)
        public int shapeCount, weightsPerVertex;
    }

    sealed class HandView
    {
        public GameObject root;
        public Mesh mesh;
        public MeshRenderer renderer;
        public GameObject[] jointSpheres;
        public string handedness;
        public TopologyData topology;  // the topology its triangles came from
        public float lastSeen;
    }

    readonly object _lock = new object();
    FrameData _latestFrame;          // guarded by _lock
    TopologyData _pendingTopology;   // guarded by _lock
    long _received, _missed, _rejected;
    string _lastError = "";
    volatile bool _wantTopology = true;
    volatile bool _stop;
    Thread _thread;

    TopologyData _topology;          // main thread only
    readonly float[][] _xrJoints = new float[2][];  // main thread: newest OpenXR joints, left, right
    readonly Dictionary<int, HandView> _views = new Dictionary<int, HandView>();

    // ---- lifecycle ---------------------------------------------------------------------
    void Start()
    {
        if (cameraTransform == null) cameraTransform = transform;
        AsyncIO.ForceDotNet.Force();  // NetMQ under Unity's Mono: avoids hangs on exit
        _stop = false;
        _thread = new Thread(NetworkLoop) { IsBackground = true, Name = "HandMeshReceiver" };
        _thread.Start();
    }

    void OnDestroy()
    {
        _stop = true;
        if (_thread != null && !_thread.Join(1000))
            Debug.LogWarning("HandMeshReceiver: network thread did not stop within 1 s");
        _thread = null;
        NetMQConfig.Cleanup(false);  // do not block the editor on pending messages
    }

    // ---- network thread ----------------------------------------------------------------
    void ApplyCurve(NetMQSocket socket)
    {
        if (string.IsNullOrEmpty(serverPublicKey)) return;
        // Z85 strings, as written by the publisher's key command.
        socket.Options.CurveServerKey = NetMQCertificate.FromPublicKey(serverPublicKey.Trim()).PublicKey;
        socket.Options.CurveCertificate = new NetMQCertificate(clientSecretKey.Trim(), clientPublicKey.Trim());
    }

    void NetworkLoop()
    {
        string topic = jointsOnly ? "joints" : "hands";
        long lastSeq = -1;
        DateTime nextTopologyTry = DateTime.MinValue;
        try
        {
            using (var sub = new SubscriberSocket())
            {
                sub.Options.Linger = TimeSpan.Zero;
                sub.Options.ReceiveHighWatermark = 1000;
                ApplyCurve(sub);
                sub.Connect(endpoint);
                sub.Subscribe(topic + " ");       // with the space: the exact topic
                sub.Subscribe("topology ");       // also sent every 5 s: late joiners catch up
                while (!_stop)
                {
                    if (_wantTopology && DateTime.UtcNow >= nextTopologyTry)
                    {
                        nextTopologyTry = DateTime.UtcNow.AddSeconds(1);  // retry at most 1/s
                        var topo = RequestTopology();
                        if (topo != null) { lock (_lock) _pendingTopology = topo; _wantTopology = false; }
                    }
                    // Wait for one message, then drain the queue and keep only the newest frame
                    // (a latest-only receive without ZMQ_CONFLATE).
                    byte[] raw;
                    if (!sub.TryReceiveFrameBytes(TimeSpan.FromMilliseconds(100), out raw)) continue;
                    byte[] newest = null;
                    do
                    {
                        string t = PeekTopic(raw);
                        if (t == "topology")
                        {
                            var topo = ParseTopology(raw);
                            if (topo != null) { lock (_lock) _pendingTopology = topo; _wantTopology = false; }
                        }
                        else if (t == topic)
                        {
                            newest = raw;
                        }
                    } while (sub.TryReceiveFrameBytes(TimeSpan.Zero, out raw));
                    if (newest == null) continue;
                    FrameData frame;
                    try { frame = ParseFrame(newest, jointsOnly); }
                    catch (Exception e) { Interlocked.Increment(ref _rejected); _lastError = e.Message; continue; }
                    if (frame == null) continue;
                    if (lastSeq >= 0 && frame.seq > lastSeq + 1) Interlocked.Add(ref _missed, frame.seq - lastSeq - 1);
                    lastSeq = frame.seq;  // smaller: the publisher restarted
                    Interlocked.Increment(ref _received);
                    lock (_lock) _latestFrame = frame;
                }
            }
        }
        catch (Exception e)
        {
            if (!_stop) { _lastError = e.Message; Debug.LogError("HandMeshReceiver: " + e); }
        }
    }

    TopologyData RequestTopology()
    {
        // A fresh REQ socket per attempt: a REQ that got no reply cannot send again.
        using (var req = new RequestSocket())
        {
            req.Options.Linger = TimeSpan.Zero;
            ApplyCurve(req);
            req.Connect(topologyEndpoint);
            req.SendFrame("topology");
            byte[] raw;
            if (!req.TryReceiveFrameBytes(TimeSpan.FromSeconds(2), out raw))
            {
                _lastError = "no topology from " + topologyEndpoint + " within 2 s: is the publisher running?";
                return null;
            }
            return ParseTopology(raw);
        }
    }

    // ---- main thread -------------------------------------------------------------------
    void Update()
    {
        received = Interlocked.Read(ref _received);
        missed = Interlocked.Read(ref _missed);
        rejected = Interlocked.Read(ref _rejected);
        lastError = _lastError;

        FrameData frame;
        TopologyData topo;
        lock (_lock)
        {
            frame = _latestFrame; _latestFrame = null;
            topo = _pendingTopology; _pendingTopology = null;
        }
        if (topo != null) _topology = topo;
        float now = Time.unscaledTime;
        if (frame != null)
        {
            var seen = new HashSet<int>();
            foreach (var hand in frame.hands)
            {
                seen.Add(hand.trackId);
                if (hand.xrJoints != null) _xrJoints[hand.handedness == "left" ? 0 : 1] = hand.xrJoints;
                HandView view = GetView(hand);
                view.lastSeen = now;
                if (!view.root.activeSelf) view.root.SetActive(true);
                if (jointsOnly || hand.vertices == null) UpdateJoints(view, hand);
                else UpdateMesh(view, hand);  // mesh mode, or rigged mode skinned here
            }
            // Every frame is published; a track missing from it is not in the image now.
            foreach (var kv in _views)
                if (!seen.Contains(kv.Key) && kv.Value.root.activeSelf) kv.Value.root.SetActive(false);
        }
        List<int> stale = null;
        foreach (var kv in _views)
            if (now - kv.Value.lastSeen > removeAfterSeconds) (stale ?? (stale = new List<int>())).Add(kv.Key);
        if (stale != null)
            foreach (int id in stale) { DestroyView(_views[id]); _views.Remove(id); }
    }

    HandView GetView(HandData hand)
    {
        HandView view;
        if (_views.TryGetValue(hand.trackId, out view)) return view;
        var go = new GameObject("hand " + hand.trackId);
        go.transform.SetParent(cameraTransform, false);  // identity: camera-local coordinates
        view = new HandView { root = go };
        if (!jointsOnly)
        {
            view.mesh = new Mesh { name = "handmesh " + hand.trackId };
            view.mesh.MarkDynamic();
            go.AddComponent<MeshFilter>().sharedMesh = view.mesh;
            view.renderer = go.AddComponent<MeshRenderer>();
        }
        _views[hand.trackId] = view;
        return view;
    }

    void DestroyView(HandView view)
    {
        if (view.mesh != null) Destroy(view.mesh);
        Destroy(view.root);
    }

    void UpdateMesh(HandView view, HandData hand)
    {
        if (hand.vertices == null && hand.rotations != null && _topology != null && _topology.restVertices != null)
        {
            try { hand.vertices = SkinRigged(_topology, hand); }  // rigged mode: skin on the CPU
            catch (FormatException e) { _lastError = e.Message; Interlocked.Increment(ref _rejected); }
        }
        if (hand.vertices == null) { _wantTopology = true; return; }
        if (_topology == null || _topology.faces == null || hand.vertices.Length != _topology.vertexCount)
        {
            _wantTopology = true;  // first frame, or the publisher changed hand model
            return;
        }
        bool rebuild = view.topology != _topology || view.handedness != hand.handedness;
        if (rebuild)
        {
            view.mesh.Clear();
            view.mesh.indexFormat = hand.vertices.Length > 65535 ? IndexFormat.UInt32 : IndexFormat.UInt16;
        }
        view.mesh.vertices = hand.vertices;
        if (rebuild)
        {
            view.mesh.triangles = UnityTriangles(_topology.faces, hand.handedness == "left");
            if (_topology.uv != null && _topology.uv.Length == hand.vertices.Length) view.mesh.uv = _topology.uv;
            view.renderer.sharedMaterial = hand.handedness == "left" ? leftHandMaterial : rightHandMaterial;
            view.topology = _topology;
            view.handedness = hand.handedness;
        }
        view.mesh.RecalculateNormals();
        view.mesh.RecalculateBounds();
    }

    // Right hands: reverse (handedness change). Left hands: reverse twice (mirrored mesh), i.e. as sent.
    static int[] UnityTriangles(int[] faces, bool left)
    {
        var tris = new int[faces.Length];
        for (int i = 0; i + 2 < faces.Length; i += 3)
        {
            tris[i] = faces[i];
            tris[i + 1] = left ? faces[i + 1] : faces[i + 2];
            tris[i + 2] = left ? faces[i + 2] : faces[i + 1];
        }
        return tris;
    }

    void UpdateJoints(HandView view, HandData hand)
    {
        if (hand.joints == null) return;
        if (view.jointSpheres == null || view.jointSpheres.Length != hand.joints.Length)
        {
            view.jointSpheres = new GameObject[hand.joints.Length];
            for (int i = 0; i < hand.joints.Length; i++)
            {
                var s = GameObject.CreatePrimitive(PrimitiveType.Sphere);
                Destroy(s.GetComponent<Collider>());
                s.name = "joint " + i;
                s.transform.SetParent(view.root.transform, false);
                s.transform.localScale = Vector3.one * jointDiameter;
                var mat = jointMaterial != null ? jointMaterial
                        : (hand.handedness == "left" ? leftHandMaterial : rightHandMaterial);
                if (mat != null) s.GetComponent<MeshRenderer>().sharedMaterial = mat;
                view.jointSpheres[i] = s;
            }
        }
        for (int i = 0; i < hand.joints.Length; i++)
            view.jointSpheres[i].transform.localPosition = hand.joints[i];
    }

    // ---- message parsing (any thread; no Unity objects) ---------------------------------
    // One ZeroMQ frame: topic (ASCII) | ' ' | uint32 LE header length H | H bytes of UTF-8
    // JSON (space padded) | payload. Array offsets count from the payload start.

    static string PeekTopic(byte[] msg)
    {
        int n = Math.Min(msg.Length, 64);
        for (int i = 0; i < n; i++) if (msg[i] == (byte)' ') return Encoding.ASCII.GetString(msg, 0, i);
        return "";
    }

    // Returns the header object and sets payloadStart; throws FormatException on bad input.
    static Dictionary<string, object> ReadHeader(byte[] msg, out int payloadStart)
    {
        int space = Array.IndexOf(msg, (byte)' ', 0, Math.Min(msg.Length, 64));
        if (space <= 0) throw new FormatException("no topic");
        int start = space + 1 + 4;
        if (msg.Length < start) throw new FormatException("truncated before the header length");
        uint hlen = (uint)(msg[space + 1] | msg[space + 2] << 8 | msg[space + 3] << 16 | msg[space + 4] << 24);
        if (hlen > (1u << 20)) throw new FormatException("header over 1 MB");
        if (start + (long)hlen > msg.Length) throw new FormatException("header runs past the end");
        string json = Encoding.UTF8.GetString(msg, start, (int)hlen);
        var header = MiniJson.Parse(json) as Dictionary<string, object>;
        if (header == null) throw new FormatException("header is not a JSON object");
        object schema;
        if (!header.TryGetValue("schema", out schema) || !(schema is double) || (double)schema != SchemaVersion)
            throw new FormatException("schema " + MiniJson.Show(schema) + " from the publisher, this script reads "
                                      + SchemaVersion + ": update " + (schema is double && (double)schema > SchemaVersion ? "this script" : "the publisher"));
        payloadStart = start + (int)hlen;
        return header;
    }

    static FrameData ParseFrame(byte[] msg, bool jointsOnly)
    {
        int payload;
        var header = ReadHeader(msg, out payload);
        var frame = new FrameData { seq = (long)MiniJson.Num(header, "seq", -1) };
        object handsObj;
        if (!header.TryGetValue("hands", out handsObj) || handsObj == null) return frame;
        var hands = handsObj as List<object>;
        if (hands == null) throw new FormatException("'hands' must be a list");
        foreach (var h in hands)
        {
            var hd = h as Dictionary<string, object>;
            if (hd == null) throw new FormatException("a hand is not an object");
            var arrays = MiniJson.Obj(hd, "arrays");
            var hand = new HandData
            {
                trackId = (int)MiniJson.Num(hd, "track_id", 0),
                handedness = MiniJson.Str(hd, "handedness", "right"),
                score = (float)MiniJson.Num(hd, "score", double.NaN),      // null (non-finite) -> NaN
                meanStd = (float)MiniJson.Num(hd, "mean_std", double.NaN),
            };
            hand.joints = ReadVectors(msg, payload, arrays, "joints");
            int[] xrShape;
            hand.xrJoints = ReadFlat(msg, payload, arrays, "xr_joints", out xrShape);
            if (hand.xrJoints != null && hand.xrJoints.Length != XRJointCount * 8)
                throw new FormatException("xr_joints is not (26,8)");
            hand.vertices = jointsOnly ? null : ReadVectors(msg, payload, arrays, "vertices");
            if (!jointsOnly && hand.vertices == null && arrays != null && arrays.ContainsKey("rotations"))
            {
                int[] shape;
                hand.rotations = ReadFlat(msg, payload, arrays, "rotations", out shape);
                hand.modelRotation = ReadFlat(msg, payload, arrays, "model_rotation", out shape);
                hand.modelTranslation = ReadFlat(msg, payload, arrays, "model_translation", out shape);
                hand.shape = ReadFlat(msg, payload, arrays, "shape", out shape);
                if (hand.rotations == null || hand.rotations.Length % 4 != 0 || hand.modelRotation == null
                    || hand.modelRotation.Length != 9 || hand.modelTranslation == null
                    || hand.modelTranslation.Length != 3 || hand.shape == null)
                    throw new FormatException("rigged hand with missing or misshapen arrays");
            }
            frame.hands.Add(hand);
        }
        return frame;
    }

    static TopologyData ParseTopology(byte[] msg)
    {
        try
        {
            int payload;
            var header = ReadHeader(msg, out payload);
            var arrays = MiniJson.Obj(header, "arrays");
            var topo = new TopologyData { vertexCount = (int)MiniJson.Num(header, "vertex_count", -1) };
            float[] faces = ReadArray(msg, payload, arrays, "faces", 3);
            if (faces != null)
            {
                topo.faces = new int[faces.Length];
                for (int i = 0; i < faces.Length; i++) topo.faces[i] = (int)faces[i];
            }
            float[] uv = ReadArray(msg, payload, arrays, "uv", 2);
            if (uv != null)
            {
                topo.uv = new Vector2[uv.Length / 2];
                for (int i = 0; i < topo.uv.Length; i++) topo.uv[i] = new Vector2(uv[2 * i], uv[2 * i + 1]);
            }
            if (arrays != null && arrays.ContainsKey("rest_vertices")) ParseRig(msg, payload, header, arrays, topo);
            return topo;
        }
        catch (Exception e)
        {
            Debug.LogWarning("HandMeshReceiver: bad topology message: " + e.Message);
            return null;
        }
    }

    static void ParseRig(byte[] msg, int payload, Dictionary<string, object> header,
                         Dictionary<string, object> arrays, TopologyData topo)
    {
        int[] vs, ss, js, jss, ks, ws;
        topo.restVertices = ReadFlat(msg, payload, arrays, "rest_vertices", out vs);
        topo.shapeDirs = ReadFlat(msg, payload, arrays, "shape_dirs", out ss);
        topo.restJoints = ReadFlat(msg, payload, arrays, "rest_joints", out js);
        topo.jointShapeDirs = ReadFlat(msg, payload, arrays, "joint_shape_dirs", out jss);
        float[] k = ReadFlat(msg, payload, arrays, "skin_joints", out ks);
        topo.skinWeights = ReadFlat(msg, payload, arrays, "skin_weights", out ws);
        var parents = header.ContainsKey("joint_parents") ? header["joint_parents"] as List<object> : null;
        if (topo.restVertices == null || ss == null || ss.Length != 3 || js == null || jss == null
            || k == null || ks.Length != 2 || ws == null || parents == null)
            throw new FormatException("rigged topology with missing or misshapen arrays");
        int nv = vs[0], nj = js[0];
        topo.shapeCount = ss[2];
        topo.weightsPerVertex = ks[1];
        if (ss[0] != nv || jss[0] != nj || jss[2] != topo.shapeCount || ks[0] != nv
            || ws[0] != nv || ws[1] != ks[1] || parents.Count != nj)
            throw new FormatException("rigged topology arrays disagree on vertex, joint or shape counts");
        topo.skinJoints = new int[k.Length];
        for (int i = 0; i < k.Length; i++)
        {
            topo.skinJoints[i] = (int)k[i];
            if (topo.skinJoints[i] < 0 || topo.skinJoints[i] >= nj) throw new FormatException("skin joint index out of range");
        }
        topo.parents = new int[nj];
        for (int j = 0; j < nj; j++)
        {
            topo.parents[j] = (int)(double)parents[j];
            if (topo.parents[j] >= j) throw new FormatException("joint_parents must list every parent before its child");
        }
    }

    // Linear blend skinning of a rigged hand, float32, in handmesh's right-handed frames
    // (docs/protocol.md, "Rigged mode"); realtime/stream/bones.py:skin_rigged does the same steps:
    // 1. shaped rest mesh and joints: rest + sum_s dirs[.., s] * shape[s]
    // 2. quaternion (x, y, z, w), normalised -> 3x3 matrix R_j
    // 3. forward kinematics: G_root = R_root, T_root = J_root; G_j = G_p R_j,
    //    T_j = G_p (J_j - J_p) + T_p; skinning translation b_j = T_j - G_j J_j
    // 4. v = sum_k w_k (G_k rest_v + b_k) over the vertex's K weighted joints
    // 5. camera = modelRotation v + modelTranslation; left hands x -> -x
    // 6. Unity axes (x, -y, z)
    public static Vector3[] SkinRigged(TopologyData topo, HandData hand)
    {
        int nv = topo.restVertices.Length / 3, nj = topo.restJoints.Length / 3, ns = topo.shapeCount;
        int kw = topo.weightsPerVertex;
        if (hand.rotations.Length != 4 * nj) throw new FormatException("rotations do not match the rig's joints");
        int sUse = Math.Min(hand.shape.Length, ns);
        var rv = new float[nv * 3];
        var rj = new float[nj * 3];
        for (int i = 0; i < nv * 3; i++) rv[i] = topo.restVertices[i];
        for (int i = 0; i < nj * 3; i++) rj[i] = topo.restJoints[i];
        for (int s = 0; s < sUse; s++)
        {
            float c = float.IsNaN(hand.shape[s]) || float.IsInfinity(hand.shape[s]) ? 0f : hand.shape[s];
            for (int i = 0; i < nv * 3; i++) rv[i] = rv[i] + topo.shapeDirs[i * ns + s] * c;
            for (int i = 0; i < nj * 3; i++) rj[i] = rj[i] + topo.jointShapeDirs[i * ns + s] * c;
        }
        var g = new float[nj * 9];  // world rotations, row-major
        var t = new float[nj * 3];  // world joint positions
        var b = new float[nj * 3];  // skinning translations
        var r = new float[9];
        for (int j = 0; j < nj; j++)
        {
            QuaternionToMatrix(hand.rotations, 4 * j, r);
            int p = topo.parents[j];
            if (p < 0)
            {
                for (int e = 0; e < 9; e++) g[9 * j + e] = r[e];
                for (int e = 0; e < 3; e++) t[3 * j + e] = rj[3 * j + e];
            }
            else
            {
                for (int row = 0; row < 3; row++)
                {
                    for (int col = 0; col < 3; col++)
                        g[9 * j + 3 * row + col] = g[9 * p + 3 * row] * r[col] + g[9 * p + 3 * row + 1] * r[3 + col]
                                                   + g[9 * p + 3 * row + 2] * r[6 + col];
                    float d0 = rj[3 * j] - rj[3 * p], d1 = rj[3 * j + 1] - rj[3 * p + 1], d2 = rj[3 * j + 2] - rj[3 * p + 2];
                    t[3 * j + row] = g[9 * p + 3 * row] * d0 + g[9 * p + 3 * row + 1] * d1 + g[9 * p + 3 * row + 2] * d2
                                     + t[3 * p + row];
                }
            }
            for (int row = 0; row < 3; row++)
                b[3 * j + row] = t[3 * j + row] - (g[9 * j + 3 * row] * rj[3 * j] + g[9 * j + 3 * row + 1] * rj[3 * j + 1]
                                                    + g[9 * j + 3 * row + 2] * rj[3 * j + 2]);
        }
        bool left = hand.handedness == "left";
        var mr = hand.modelRotation;
        var mt = hand.modelTranslation;
        var outp = new Vector3[nv];
        var m = new float[12];
        for (int v = 0; v < nv; v++)
        {
            Array.Clear(m, 0, 12);
            for (int k = 0; k < kw; k++)
            {
                float w = topo.skinWeights[v * kw + k];
                int j = topo.skinJoints[v * kw + k];
                for (int e = 0; e < 9; e++) m[e] += w * g[9 * j + e];
                for (int e = 0; e < 3; e++) m[9 + e] += w * b[3 * j + e];
            }
            float x = rv[3 * v], y = rv[3 * v + 1], z = rv[3 * v + 2];
            float px = m[0] * x + m[1] * y + m[2] * z + m[9];
            float py = m[3] * x + m[4] * y + m[5] * z + m[10];
            float pz = m[6] * x + m[7] * y + m[8] * z + m[11];
            float cx = mr[0] * px + mr[1] * py + mr[2] * pz + mt[0];
            float cy = mr[3] * px + mr[4] * py + mr[5] * pz + mt[1];
            float cz = mr[6] * px + mr[7] * py + mr[8] * pz + mt[2];
            if (left) cx = -cx;
            outp[v] = new Vector3(cx, -cy, cz);  // OpenCV camera -> Unity axes
        }
        return outp;
    }

    static void QuaternionToMatrix(float[] q, int o, float[] r)
    {
        float x = q[o], y = q[o + 1], z = q[o + 2], w = q[o + 3];
        float n = (float)Math.Sqrt(x * x + y * y + z * z + w * w);
        if (n > 1e-8f) { x /= n; y /= n; z /= n; w /= n; } else { x = 0; y = 0; z = 0; w = 1; }
        r[0] = 1 - 2 * (y * y + z * z); r[1] = 2 * (x * y - z * w); r[2] = 2 * (x * z + y * w);
        r[3] = 2 * (x * y + z * w); r[4] = 1 - 2 * (x * x + z * z); r[5] = 2 * (y * z - x * w);
        r[6] = 2 * (x * z - y * w); r[7] = 2 * (y * z + x * w); r[8] = 1 - 2 * (x * x + y * y);
    }

    // ---- OpenXR joints (XRHandJointID order, Unity axes) -------------------------------
    public const int XRJointCount = 26;

    // XRHandJointID value (Wrist = 1, Palm = 2, ThumbMetacarpal = 3 ... LittleTip = 26) ->
    // row of xr_joints (XrHandJointEXT: Palm = 0, Wrist = 1, ThumbMetacarpal = 2 ...); -1 if
    // not a joint.
    public static int OpenXRRow(int xrHandJointId)
    {
        if (xrHandJointId == 1) return 1;
        if (xrHandJointId == 2) return 0;
        if (xrHandJointId >= 3 && xrHandJointId <= XRJointCount) return xrHandJointId - 1;
        return -1;
    }

    // The newest pose (camera-local, Unity axes) and radius (m) of joint `xrHandJointId`
    // (an XRHandJointID value) of the "left" or "right" hand; false when that hand or its
    // OpenXR joints are not in the stream (or the joint is not finite).
    public bool TryGetXRJoint(string handedness, int xrHandJointId, out Pose pose, out float radius)
    {
        return XRJoint(_xrJoints[handedness == "left" ? 0 : 1], xrHandJointId, out pose, out radius);
    }

    // One joint of an xr_joints array (26,8 as sent) in Unity axes: position (x, y, -z),
    // rotation (-qx, -qy, qz, qw); see OPENXR JOINTS at the top.
    public static bool XRJoint(float[] xr, int xrHandJointId, out Pose pose, out float radius)
    {
        pose = new Pose(new Vector3(0, 0, 0), new Quaternion(0, 0, 0, 1));
        radius = 0f;
        int row = OpenXRRow(xrHandJointId);
        if (xr == null || xr.Length != XRJointCount * 8 || row < 0) return false;
        int k = row * 8;
        for (int c = 0; c < 8; c++)
            if (float.IsNaN(xr[k + c]) || float.IsInfinity(xr[k + c])) return false;
        pose = new Pose(new Vector3(xr[k], xr[k + 1], -xr[k + 2]),
                        new Quaternion(-xr[k + 3], -xr[k + 4], xr[k + 5], xr[k + 6]));
        radius = xr[k + 7];
        return true;
    }

    // Test hook: every hand's 26 OpenXR joints in XRHandJointID order (1..26), Unity axes,
    // as 8 floats each (position, rotation x y z w, radius); null for a hand without them.
    public static List<float[]> DecodeFrameXRJoints(byte[] frameMsg)
    {
        var result = new List<float[]>();
        foreach (var hand in ParseFrame(frameMsg, false).hands)
        {
            float[] outp = null;
            if (hand.xrJoints != null)
            {
                outp = new float[XRJointCount * 8];
                for (int id = 1; id <= XRJointCount; id++)
                {
                    Pose p;
                    float r;
                    if (!XRJoint(hand.xrJoints, id, out p, out r)) { outp = null; break; }
                    int k = (id - 1) * 8;
                    outp[k] = p.position.x; outp[k + 1] = p.position.y; outp[k + 2] = p.position.z;
                    outp[k + 3] = p.rotation.x; outp[k + 4] = p.rotation.y; outp[k + 5] = p.rotation.z;
                    outp[k + 6] = p.rotation.w; outp[k + 7] = r;
                }
            }
            result.Add(outp);
        }
        return result;
    }

    // Test hook (no Unity objects): the vertices of every hand of a frame message, in Unity
    // axes; rigged hands are skinned with the topology message. Used by the handmesh tests.
    public static List<Vector3[]> DecodeFrameVertices(byte[] topologyMsg, byte[] frameMsg)
    {
        var topo = ParseTopology(topologyMsg);
        var frame = ParseFrame(frameMsg, false);
        var result = new List<Vector3[]>();
        foreach (var hand in frame.hands)
        {
            if (hand.vertices == null && hand.rotations != null && topo != null && topo.restVertices != null)
                hand.vertices = SkinRigged(topo, hand);
            result.Add(hand.vertices);
        }
        return result;
    }

    // (N,3) array -> Unity vectors, converting OpenCV (x, y down, z) to Unity (x, y up, z).
    static Vector3[] ReadVectors(byte[] msg, int payload, Dictionary<string, object> arrays, string name)
    {
        float[] a = ReadArray(msg, payload, arrays, name, 3);
        if (a == null) return null;
        var v = new Vector3[a.Length / 3];
        for (int i = 0; i < v.Length; i++) v[i] = new Vector3(a[3 * i], -a[3 * i + 1], a[3 * i + 2]);
        return v;
    }

    [StructLayout(LayoutKind.Explicit)]
    struct Bits32
    {
        [FieldOffset(0)] public int i;
        [FieldOffset(0)] public float f;
    }

    // An (N, columns) array by name as floats (int32 converted). Null if absent.
    static float[] ReadArray(byte[] msg, int payload, Dictionary<string, object> arrays, string name, int columns)
    {
        int[] shape;
        float[] a = ReadFlat(msg, payload, arrays, name, out shape);
        if (a != null && (shape.Length != 2 || shape[1] != columns))
            throw new FormatException("array " + name + " is not (N," + columns + ")");
        return a;
    }

    // An array of any shape by name, flattened (C order) as floats (int32 converted), checking
    // dtype, size and bounds. Null (and shape null) if absent.
    static float[] ReadFlat(byte[] msg, int payload, Dictionary<string, object> arrays, string name, out int[] dims)
    {
        dims = null;
        object specObj;
        if (arrays == null || !arrays.TryGetValue(name, out specObj)) return null;
        var spec = specObj as Dictionary<string, object>;
        if (spec == null) throw new FormatException("array " + name + " has no description");
        string dtype = MiniJson.Str(spec, "dtype", "");
        var shape = spec.ContainsKey("shape") ? spec["shape"] as List<object> : null;
        if (shape == null) throw new FormatException("array " + name + " has no shape");
        long count = 1;
        var dimList = new int[shape.Count];
        for (int d = 0; d < shape.Count; d++)
        {
            if (!(shape[d] is double) || (double)shape[d] < 0) throw new FormatException("array " + name + ": bad shape");
            dimList[d] = (int)(double)shape[d];
            count *= dimList[d];
        }
        int itemsize = dtype == "<f2" ? 2 : (dtype == "<f4" || dtype == "<i4") ? 4 : 0;
        if (itemsize == 0) throw new FormatException("array " + name + ": unknown dtype " + dtype);
        long offset = (long)MiniJson.Num(spec, "offset", -1), nbytes = (long)MiniJson.Num(spec, "nbytes", -1);
        if (offset < 0 || nbytes != count * itemsize) throw new FormatException("array " + name + ": bad offset or nbytes");
        long at = payload + offset;
        if (at + nbytes > msg.Length) throw new FormatException("array " + name + " runs past the end (truncated)");
        var outp = new float[count];
        int o = (int)at;
        for (long k = 0; k < count; k++, o += itemsize)
        {
            if (itemsize == 2)
            {
                outp[k] = Mathf.HalfToFloat((ushort)(msg[o] | msg[o + 1] << 8));
            }
            else
            {
                int bits = msg[o] | msg[o + 1] << 8 | msg[o + 2] << 16 | msg[o + 3] << 24;  // little-endian on any CPU
                outp[k] = dtype == "<i4" ? bits : new Bits32 { i = bits }.f;
            }
        }
        dims = dimList;
        return outp;
    }

    // ---- a minimal JSON reader: objects -> Dictionary, arrays -> List, numbers -> double ----
    // (JsonUtility cannot read the "arrays" table: its keys are array names, not fixed fields.)
    static class MiniJson
    {
        public static object Parse(string s)
        {
            int i = 0;
            object v = Value(s, ref i);
            Ws(s, ref i);
            if (i != s.Length) throw new FormatException("trailing data in JSON at " + i);
            return v;
        }

        public static double Num(Dictionary<string, object> o, string key, double fallback)
        {
            object v;
            return o != null && o.TryGetValue(key, out v) && v is double ? (double)v : fallback;
        }

        public static string Str(Dictionary<string, object> o, string key, string fallback)
        {
            object v;
            return o != null && o.TryGetValue(key, out v) && v is string ? (string)v : fallback;
        }

        public static Dictionary<string, object> Obj(Dictionary<string, object> o, string key)
        {
            object v;
            return o != null && o.TryGetValue(key, out v) ? v as Dictionary<string, object> : null;
        }

        public static string Show(object v) { return v == null ? "null" : Convert.ToString(v, CultureInfo.InvariantCulture); }

        static void Ws(string s, ref int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        }

        static object Value(string s, ref int i)
        {
            Ws(s, ref i);
            if (i >= s.Length) throw new FormatException("unexpected end of JSON");
            char c = s[i];
            if (c == '{')
            {
                var o = new Dictionary<string, object>();
                i++; Ws(s, ref i);
                if (i < s.Length && s[i] == '}') { i++; return o; }
                while (true)
                {
                    Ws(s, ref i);
                    if (i >= s.Length || s[i] != '"') throw new FormatException("expected a key at " + i);
                    string key = ReadString(s, ref i);
                    Ws(s, ref i);
                    if (i >= s.Length || s[i] != ':') throw new FormatException("expected ':' at " + i);
                    i++;
                    o[key] = Value(s, ref i);
                    Ws(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == '}') { i++; return o; }
                    throw new FormatException("expected ',' or '}' at " + i);
                }
            }
            if (c == '[')
            {
                var l = new List<object>();
                i++; Ws(s, ref i);
                if (i < s.Length && s[i] == ']') { i++; return l; }
                while (true)
                {
                    l.Add(Value(s, ref i));
                    Ws(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == ']') { i++; return l; }
                    throw new FormatException("expected ',' or ']' at " + i);
                }
            }
            if (c == '"') return ReadString(s, ref i);
            if (Word(s, ref i, "null")) return null;
            if (Word(s, ref i, "true")) return true;
            if (Word(s, ref i, "false")) return false;
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            double d;
            if (i == start || !double.TryParse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                throw new FormatException("bad JSON value at " + start);
            return d;
        }

        static bool Word(string s, ref int i, string w)
        {
            if (string.CompareOrdinal(s, i, w, 0, w.Length) != 0) return false;
            i += w.Length;
            return true;
        }

        static string ReadString(string s, ref int i)
        {
            var sb = new StringBuilder();
            i++;  // opening quote
            while (i < s.Length)
            {
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (i >= s.Length) break;
                char e = s[i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u':
                        if (i + 4 > s.Length) throw new FormatException("bad \\u escape");
                        sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: sb.Append(e); break;  // \" \\ \/
                }
            }
            throw new FormatException("unterminated JSON string");
        }
    }
}
