// Minimal stand-ins for the UnityEngine and NetMQ types HandMeshReceiver.cs uses, so that
// tests/test_unity_script.py can compile the script with Mono's mcs and run its decoding
// and skinning code (no Unity, no NetMQ here). Only signatures; nothing here is rendered.
using System;
using System.Collections.Generic;

namespace UnityEngine
{
    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 one { get { return new Vector3(1, 1, 1); } }
        public static Vector3 operator *(Vector3 a, float d) { return new Vector3(a.x * d, a.y * d, a.z * d); }
    }
    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    }
    public struct Pose
    {
        public Vector3 position;
        public Quaternion rotation;
        public Pose(Vector3 position, Quaternion rotation) { this.position = position; this.rotation = rotation; }
    }
    public struct Vector2
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }
    }
    public class Object
    {
        public string name;
        public static void Destroy(Object o) { }
    }
    public class Component : Object
    {
        public GameObject gameObject;
        public Transform transform;
        public T GetComponent<T>() where T : Component { return null; }
    }
    public class Behaviour : Component { }
    public class MonoBehaviour : Behaviour { }
    public class Transform : Component
    {
        public Vector3 localPosition;
        public Vector3 localScale;
        public void SetParent(Transform parent, bool worldPositionStays) { }
    }
    public class Collider : Component { }
    public class Material : Object { }
    public class MeshFilter : Component { public Mesh sharedMesh; }
    public class MeshRenderer : Component { public Material sharedMaterial; }
    public class Mesh : Object
    {
        public Vector3[] vertices;
        public int[] triangles;
        public Vector2[] uv;
        public Rendering.IndexFormat indexFormat;
        public void MarkDynamic() { }
        public void Clear() { }
        public void RecalculateNormals() { }
        public void RecalculateBounds() { }
    }
    public enum PrimitiveType { Sphere }
    public class GameObject : Object
    {
        public Transform transform = new Transform();
        public GameObject(string name) { this.name = name; }
        public bool activeSelf;
        public void SetActive(bool v) { activeSelf = v; }
        public T AddComponent<T>() where T : Component, new() { return new T(); }
        public T GetComponent<T>() where T : Component { return null; }
        public static GameObject CreatePrimitive(PrimitiveType t) { return new GameObject("p"); }
    }
    public static class Debug
    {
        public static void Log(object m) { Console.Error.WriteLine(m); }
        public static void LogWarning(object m) { Console.Error.WriteLine(m); }
        public static void LogError(object m) { Console.Error.WriteLine(m); }
    }
    public static class Time { public static float unscaledTime; }
    public static class Mathf
    {
        public static float HalfToFloat(ushort h)
        {
            int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
            float v = exp == 0 ? man * (float)Math.Pow(2, -24)
                    : exp == 31 ? (man == 0 ? float.PositiveInfinity : float.NaN)
                    : (float)((1 + man / 1024.0) * Math.Pow(2, exp - 15));
            return sign == 1 ? -v : v;
        }
    }
    [AttributeUsage(AttributeTargets.Field)]
    public class HeaderAttribute : Attribute { public HeaderAttribute(string h) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public class TooltipAttribute : Attribute { public TooltipAttribute(string t) { } }
}

namespace UnityEngine.Rendering
{
    public enum IndexFormat { UInt16, UInt32 }
}

namespace AsyncIO
{
    public static class ForceDotNet { public static void Force() { } }
}

namespace NetMQ
{
    public class SocketOptions
    {
        public TimeSpan Linger;
        public int ReceiveHighWatermark;
        public byte[] CurveServerKey;
        public NetMQCertificate CurveCertificate;
    }
    public class NetMQCertificate
    {
        public byte[] PublicKey;
        public NetMQCertificate(string secretKey, string publicKey) { }
        public static NetMQCertificate FromPublicKey(string publicKey) { return new NetMQCertificate("", publicKey); }
    }
    public abstract class NetMQSocket : IDisposable
    {
        public SocketOptions Options = new SocketOptions();
        public void Connect(string address) { }
        public void Dispose() { }
    }
    public static class NetMQConfig { public static void Cleanup(bool block) { } }
    public static class ReceivingSocketExtensions
    {
        public static bool TryReceiveFrameBytes(this NetMQSocket s, TimeSpan timeout, out byte[] bytes)
        { bytes = null; return false; }
    }
    public static class OutgoingSocketExtensions
    {
        public static void SendFrame(this NetMQSocket s, string message) { }
    }
}

namespace NetMQ.Sockets
{
    public class SubscriberSocket : NetMQSocket { public void Subscribe(string topic) { } }
    public class RequestSocket : NetMQSocket { }
}
