using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;

namespace EphemeralPorts.SockDiag;

/// <summary>Why netlink could not be used, so that the caller can fall back to /proc and say so.</summary>
public sealed class NetlinkUnavailableException(string message) : Exception(message);

/// <summary>
/// Acquisition through sock_diag: four dumps (TCP and UDP, IPv4 and IPv6; there is no single
/// v4+v6 dump), each filtered in the kernel by a state mask and by the local-port range, streamed
/// into a sink with no per-socket allocation. It sees the network namespace of the calling thread.
/// </summary>
public static class SockDiagScanner
{
    private const int Eperm = 1;
    private const int Enoent = 2;
    private const int Eacces = 13;
    private const int Einval = 22;
    private const int EprotoNoSupport = 93;
    private const int EafNoSupport = 97;

    /// <summary>Large enough for the kernel's biggest dump skb (32 KiB and more on big-page hosts).</summary>
    private const int ReceiveBufferBytes = 256 * 1024;

    public static void Scan(PortRange range, bool tcp, bool udp, ISocketSink sink, Action<string>? progress = null)
    {
        using var socket = NetlinkSocket.Open(SockDiagProtocol.NetlinkSockDiag, out var errno)
            ?? throw new NetlinkUnavailableException($"socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: {ErrnoName(errno)}");
        var buffer = new byte[ReceiveBufferBytes];
        uint sequence = 1;
        foreach (var (protocol, transport, name) in new[] { (SockDiagProtocol.IpProtoTcp, Transport.Tcp, "tcp"), (SockDiagProtocol.IpProtoUdp, Transport.Udp, "udp") })
        {
            if ((transport == Transport.Tcp && !tcp) || (transport == Transport.Udp && !udp))
            {
                continue;
            }

            foreach (var (family, familyName) in new[] { (SockDiagProtocol.AfInet, "IPv4"), (SockDiagProtocol.AfInet6, "IPv6") })
            {
                progress?.Invoke($"netlink sock_diag {name} {familyName}");
                Dump(socket, buffer, SockDiagProtocol.DumpRequest(family, protocol, SockDiagProtocol.AllStates, range, sequence++), transport, family == SockDiagProtocol.AfInet6, sink);
            }
        }
    }

    private static void Dump(NetlinkSocket socket, byte[] buffer, byte[] request, Transport transport, bool ipv6, ISocketSink sink)
    {
        var sendError = socket.Send(request);
        if (sendError != 0)
        {
            throw new NetlinkUnavailableException($"sending the sock_diag request failed: {ErrnoName(sendError)}");
        }

        var first = true;
        while (true)
        {
            var received = socket.Receive(buffer);
            if (received < 0)
            {
                throw new NetlinkUnavailableException($"receiving the sock_diag dump failed: {ErrnoName(-received)}");
            }

            if (received == 0)
            {
                throw new CheckException("netlink sock_diag: the kernel closed the dump early");
            }

            SockDiagProtocol.Outcome outcome;
            int error;
            try
            {
                outcome = SockDiagProtocol.Parse(buffer.AsSpan(0, received), transport, sink, out error);
            }
            catch (InvalidDataException e)
            {
                throw new CheckException($"netlink sock_diag: malformed reply: {e.Message}", e);
            }

            if (outcome == SockDiagProtocol.Outcome.Done)
            {
                return;
            }

            if (outcome == SockDiagProtocol.Outcome.Error)
            {
                // IPv6 compiled out answers ENOENT: like a missing /proc/net/tcp6, that is normal.
                if (ipv6 && error == Enoent && first)
                {
                    return;
                }

                // A kernel that refuses the request itself (old, or a sandbox) leaves /proc.
                if (first && error is Eperm or Eacces or Einval or EprotoNoSupport or EafNoSupport or Enoent)
                {
                    throw new NetlinkUnavailableException($"the kernel refused the sock_diag dump: {ErrnoName(error)}");
                }

                throw new CheckException($"netlink sock_diag dump failed: {ErrnoName(error)}");
            }

            first = false;
        }
    }

    public static string ErrnoName(int errno) => errno switch
    {
        Eperm => "EPERM (operation not permitted)",
        Enoent => "ENOENT (not supported by this kernel)",
        Eacces => "EACCES (permission denied)",
        Einval => "EINVAL (invalid request)",
        EprotoNoSupport => "EPROTONOSUPPORT (no sock_diag in this kernel)",
        EafNoSupport => "EAFNOSUPPORT (no netlink here)",
        _ => $"errno {errno}",
    };
}
