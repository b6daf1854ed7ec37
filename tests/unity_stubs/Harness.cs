// Runs HandMeshReceiver's message decoding and rigged skinning on messages written by the
// Python side: Harness.exe TOPOLOGY_FILE FRAME_FILE OUT_FILE writes, per hand, the vertex
// count (int32) and the vertices in Unity axes (float32 x, y, z), little-endian. With a 4th
// argument XR_FILE it also writes, per hand, int32 26 (or 0) and the OpenXR joints in
// XRHandJointID order, Unity axes (float32 position, rotation x y z w, radius).
using System;
using System.IO;

public static class Harness
{
    public static int Main(string[] args)
    {
        var hands = HandMeshReceiver.DecodeFrameVertices(File.ReadAllBytes(args[0]), File.ReadAllBytes(args[1]));
        using (var w = new BinaryWriter(File.Create(args[2])))
        {
            foreach (var v in hands)
            {
                w.Write(v == null ? 0 : v.Length);
                if (v == null) continue;
                foreach (var p in v) { w.Write(p.x); w.Write(p.y); w.Write(p.z); }
            }
        }
        if (args.Length > 3)
        {
            using (var w = new BinaryWriter(File.Create(args[3])))
            {
                foreach (var xr in HandMeshReceiver.DecodeFrameXRJoints(File.ReadAllBytes(args[1])))
                {
                    w.Write(xr == null ? 0 : HandMeshReceiver.XRJointCount);
                    if (xr == null) continue;
                    foreach (var f in xr) w.Write(f);
                }
            }
        }
        return 0;
    }
}
