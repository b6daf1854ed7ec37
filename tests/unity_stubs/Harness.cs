// Runs HandMeshReceiver's message decoding and rigged skinning on messages written by the
// Python side: Harness.exe TOPOLOGY_FILE FRAME_FILE OUT_FILE writes, per hand, the vertex
// count (int32) and the vertices in Unity axes (float32 x, y, z), little-endian.
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
        return 0;
    }
}
