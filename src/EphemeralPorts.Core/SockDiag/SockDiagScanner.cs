using EphemeralPorts.Native;
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
    /// <summary>Large enough for the kernel's biggest dump skb (32 KiB and more on big-page hosts).</summary>
    private const int ReceiveBufferBytes = 256 * 1024;

    /// <summary>
    /// Runs the dumps in lanes, one thread each: the IPv4 TCP dump (where most sockets are
    /// reported) split in two by local port, and the IPv6 TCP dump (a second walk of the whole
    /// connection hash) with the UDP dumps. Each lane has its own socket; the sink is fed one received buffer at
    /// a time under a lock, so the calculator sees one socket at a time and memory stays flat.
    /// </summary>
    public static void Scan(PortRange range, bool tcp, bool udp, ISocketSink sink, Action<string>? progress = null)
    {
        // Where most sockets are: IPv4 TCP, split by local port into two dumps so that two cores
        // share the reporting; each still walks the connection hash once.
        List<List<DumpSpec>> lanes = [[], [], []];
        if (tcp)
        {
            var (low, high) = range.Size >= 2
                ? (new PortRange(range.Low, range.Low + (range.Size / 2) - 1), new PortRange(range.Low + (range.Size / 2), range.High))
                : (range, (PortRange?)null);
            lanes[0].Add(new(SockDiagProtocol.AfInet, SockDiagProtocol.IpProtoTcp, Transport.Tcp, low, "tcp IPv4"));
            if (high is { } upper)
            {
                lanes[1].Add(new(SockDiagProtocol.AfInet, SockDiagProtocol.IpProtoTcp, Transport.Tcp, upper, "tcp IPv4"));
            }

            lanes[2].Add(new(SockDiagProtocol.AfInet6, SockDiagProtocol.IpProtoTcp, Transport.Tcp, range, "tcp IPv6"));
        }

        if (udp)
        {
            lanes[2].Add(new(SockDiagProtocol.AfInet, SockDiagProtocol.IpProtoUdp, Transport.Udp, range, "udp IPv4"));
            lanes[2].Add(new(SockDiagProtocol.AfInet6, SockDiagProtocol.IpProtoUdp, Transport.Udp, range, "udp IPv6"));
        }

        lanes.RemoveAll(l => l.Count == 0);

        // Both sockets are opened before any dump runs: a refusal here leaves nothing half-counted.
        var sockets = new List<NetlinkSocket>();
        try
        {
            foreach (var _ in lanes)
            {
                sockets.Add(NetlinkSocket.Open(SockDiagProtocol.NetlinkSockDiag, out var errno)
                    ?? throw new NetlinkUnavailableException($"socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: {ErrnoName(errno)}"));
            }

            var failures = new Exception?[lanes.Count];
            var threads = new List<Thread>();
            for (var i = 1; i < lanes.Count; i++)
            {
                var lane = i;
                var thread = new Thread(() => RunLane(lanes[lane], sockets[lane], sink, progress, failures, lane)) { IsBackground = true, Name = "sock_diag" };
                thread.Start();
                threads.Add(thread);
            }

            RunLane(lanes[0], sockets[0], sink, progress, failures, 0);
            threads.ForEach(t => t.Join());
            if (failures.FirstOrDefault(f => f is not null) is { } failure)
            {
                throw failure;
            }
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    private static void RunLane(List<DumpSpec> dumps, NetlinkSocket socket, ISocketSink sink, Action<string>? progress, Exception?[] failures, int lane)
    {
        try
        {
            var buffer = new byte[ReceiveBufferBytes];
            uint sequence = 1;
            foreach (var dump in dumps)
            {
                progress?.Invoke($"netlink sock_diag {dump.Name}");
                var request = SockDiagProtocol.DumpRequest(dump.Family, dump.Protocol, SockDiagProtocol.AllStates, dump.Ports, sequence++);
                Dump(socket, buffer, request, dump.Transport, dump.Family == SockDiagProtocol.AfInet6, sink);
            }
        }
        catch (Exception e) when (e is NetlinkUnavailableException or CheckException)
        {
            failures[lane] = e;
        }
        catch (Exception e)
        {
            // A lane thread has no caller to catch for it: what it throws is carried to the main
            // lane, which reports it as UNKNOWN like any other failure.
            failures[lane] = new CheckException($"netlink sock_diag: {e.GetType().Name}: {e.Message}", e);
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
                lock (sink)
                {
                    outcome = SockDiagProtocol.Parse(buffer.AsSpan(0, received), transport, sink, out error);
                }
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
                if (ipv6 && error == Errno.Enoent && first)
                {
                    return;
                }

                // A kernel that refuses the request itself (old, or a sandbox) leaves /proc.
                if (first && error is Errno.Eperm or Errno.Eacces or Errno.Einval or Errno.EprotoNoSupport or Errno.EafNoSupport or Errno.Enoent)
                {
                    throw new NetlinkUnavailableException($"the kernel refused the sock_diag dump: {ErrnoName(error)}");
                }

                throw new CheckException($"netlink sock_diag dump failed: {ErrnoName(error)}");
            }

            first = false;
        }
    }

    private readonly record struct DumpSpec(byte Family, byte Protocol, Transport Transport, PortRange Ports, string Name);

    public static string ErrnoName(int errno) => Errno.Describe(errno);
}
