using System.Collections.Concurrent;

namespace EphemeralPorts.Acquisition;

/// <summary>
/// The 256 KiB buffers the kernel interfaces are read into (a sock_diag dump's skbs, a BPF
/// iterator's records). Not cleared: the kernel writes what it sends. Returned after each read,
/// so hundreds of namespaces keep as many buffers as are read at once, not one each.
/// </summary>
internal static class ReadBuffers
{
    /// <summary>Large enough for the kernel's biggest dump skb (32 KiB and more on big-page hosts).</summary>
    public const int Bytes = 256 * 1024;

    private static readonly ConcurrentBag<byte[]> Free = [];

    public static byte[] Rent() => Free.TryTake(out var buffer) ? buffer : GC.AllocateUninitializedArray<byte>(Bytes);

    public static void Return(byte[] buffer) => Free.Add(buffer);
}
