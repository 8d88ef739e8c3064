using System.Runtime.InteropServices;

namespace EphemeralPorts.Acquisition.SockDiag;

/// <summary>An AF_NETLINK socket through libc, with source-generated (Native AOT safe) P/Invoke.</summary>
internal sealed partial class NetlinkSocket : IDisposable
{
    private const int AfNetlink = 16;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;

    private readonly int _fd;

    private NetlinkSocket(int fd) => _fd = fd;

    /// <summary>Opens a socket of <paramref name="protocol"/>; on failure returns null and the errno.</summary>
    public static NetlinkSocket? Open(int protocol, out int errno)
    {
        var fd = socket(AfNetlink, SockRaw | SockCloexec, protocol);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new NetlinkSocket(fd);
    }

    /// <summary>Sends one message to the kernel (port id 0); returns 0 or the errno.</summary>
    public unsafe int Send(ReadOnlySpan<byte> message)
    {
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }
        Span<byte> kernel = stackalloc byte[12];
        kernel.Clear();
        kernel[0] = AfNetlink;
        fixed (byte* m = message)
        fixed (byte* a = kernel)
        {
            while (true)
            {
                var sent = sendto(_fd, m, (nuint)message.Length, 0, a, (uint)kernel.Length);
                if (sent >= 0)
                {
                    return 0;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != Native.Errno.Eintr)
                {
                    return errno;
                }
            }
        }
    }

    /// <summary>Receives into <paramref name="buffer"/>; returns the byte count, or -errno.</summary>
    public unsafe int Receive(Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            while (true)
            {
                var received = recv(_fd, b, (nuint)buffer.Length, 0);
                if (received >= 0)
                {
                    return (int)received;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != Native.Errno.Eintr)
                {
                    return -errno;
                }
            }
        }
    }

    public void Dispose() => _ = close(_fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint sendto(int fd, byte* buffer, nuint length, int flags, byte* address, uint addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
