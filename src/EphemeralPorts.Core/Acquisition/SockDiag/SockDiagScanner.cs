using EphemeralPorts.Native;
using EphemeralPorts.Plugin;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.SockDiag;

/// <summary>
/// Acquisition through sock_diag: TCP through the older TCPDIAG_GETSOCK request, whose dump
/// covers IPv4 and IPv6 in one walk (SOCK_DIAG_BY_FAMILY has no AF_UNSPEC and would need two), and
/// UDP per family; each filtered in the kernel by a state mask and by the local-port range,
/// streamed into a sink with no per-socket allocation. It sees the network namespace of the
/// calling thread.
/// </summary>
public static class SockDiagScanner
{
    /// <summary>
    /// Below this many TCP sockets in the namespace, one lane does everything on the calling thread:
    /// a second TCP lane walks the whole connection hash once more (every namespace's sockets, and
    /// 262,144 buckets on a 24 GiB host: ~0.7 ms of CPU even when they are empty) to share a
    /// reporting that costs ~1 µs a socket of the namespace.
    /// </summary>
    public const long ParallelFromTcpSockets = 4000;

    /// <summary>
    /// The part of the range the first TCP lane reports. That lane also walks the bind hash (for
    /// bound-but-idle sockets), about as long as reporting a quarter of the sockets of the range
    /// with 100k connections here (perf, ./build.sh bench), so it takes the smaller part.
    /// </summary>
    private const double FirstLaneShare = 1.0 / 3;

    /// <summary>The first port of the second TCP lane; the range has at least two ports.</summary>
    public static int SplitPort(PortRange range) => range.Low + Math.Max(1, (int)(range.Size * FirstLaneShare));

    /// <summary>
    /// Runs the dumps in lanes, one thread each: TCP (both families in one walk) split in two by
    /// local port, and the UDP dumps; or all in one lane when <paramref name="tcpSocketsHint"/> says
    /// the namespace has few TCP sockets (or only UDP is asked). Each lane has its own socket; the sink is fed one received
    /// buffer at a time under a lock, so the calculator sees one socket at a time and memory stays flat.
    /// </summary>
    public static void Scan(PortRange range, bool tcp, bool udp, ISocketSink sink, Action<string>? progress = null, long? tcpSocketsHint = null, bool udpV4 = true, bool udpV6 = true, bool boundInactive = true)
    {
        // Bound-but-idle sockets cost a walk of the whole bind hash: not asked for where the
        // namespace is known to have none (Sockstat.ProvesNoBoundInactiveTcp).
        var tcpStates = boundInactive ? SockDiagProtocol.AllStates : SockDiagProtocol.AllStates & ~SockDiagProtocol.BoundInactiveState;
        // UDP tables are small: their two dumps share a lane. A family known to have no UDP
        // socket in the namespace is not dumped (the walk would find nothing of it).
        var udpDumps = new List<DumpSpec>(2);
        if (udp && udpV4)
        {
            udpDumps.Add(DumpSpec.Udp(SockDiagProtocol.AfInet, range));
        }

        if (udp && udpV6)
        {
            udpDumps.Add(DumpSpec.Udp(SockDiagProtocol.AfInet6, range));
        }

        if (!tcp || tcpSocketsHint < ParallelFromTcpSockets || range.Size < 2)
        {
            RunLanes([tcp ? [DumpSpec.TcpBothFamilies(tcpStates, PortFilter.LocalPortIn(range)), .. udpDumps] : udpDumps], sink, progress);
            return;
        }

        // TCP is where most sockets are: one dump of both families per walk of the connection hash
        // (TCPDIAG_GETSOCK), split by local port into two lanes so that two cores share the
        // reporting. Only the first lane asks for listeners and bound-but-idle sockets (the only
        // ones with no remote port): each lane asking would walk the bind hash twice.
        var split = SplitPort(range);
        var first = DumpSpec.TcpBothFamilies(
            tcpStates,
            PortFilter.AnyOf([PortBounds.Local(new PortRange(range.Low, split - 1))], [PortBounds.Local(range), PortBounds.RemoteIs(0)]));
        var second = DumpSpec.TcpBothFamilies(
            SockDiagProtocol.ConnectionStates,
            PortFilter.AnyOf([PortBounds.Local(new PortRange(split, range.High)), PortBounds.RemoteFrom(1)]));
        RunLanes([[first], [second], udpDumps], sink, progress);
    }

    /// <summary>
    /// Only the TCP sockets that are bound but neither listening nor connected, both families in
    /// one request (TCPDIAG_GETSOCK with state bit 13 alone): what the BPF iterators cannot visit,
    /// as they are in the bind hash only. On the calling thread.
    /// </summary>
    public static void ScanBoundInactive(PortRange range, ISocketSink sink, Action<string>? progress = null) =>
        RunLanes([[DumpSpec.TcpBothFamilies(SockDiagProtocol.BoundInactiveState, PortFilter.LocalPortIn(range))]], sink, progress);

    private static void RunLanes(List<List<DumpSpec>> lanes, ISocketSink sink, Action<string>? progress)
    {
        lanes.RemoveAll(l => l.Count == 0);
        if (lanes.Count == 0)
        {
            return;
        }

        // Every lane's socket is opened before any dump runs: a refusal here leaves nothing half-counted.
        var sockets = new List<NetlinkSocket>();
        try
        {
            foreach (var _ in lanes)
            {
                sockets.Add(NetlinkSocket.Open(SockDiagProtocol.NetlinkSockDiag, out var errno)
                    ?? throw new SourceRefusedException($"socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: {Errno.Describe(errno)}"));
            }

            Workers.RunAll("sock_diag", [.. lanes.Select((lane, i) => (Action)(() => RunLane(lane, sockets[i], sink, progress)))]);
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    private static void RunLane(List<DumpSpec> dumps, NetlinkSocket socket, ISocketSink sink, Action<string>? progress)
    {
        var buffer = ReadBuffers.Rent();
        try
        {
            uint sequence = 1;
            foreach (var dump in dumps)
            {
                progress?.Invoke($"netlink sock_diag {dump.Name}");
                if (!dump.BothFamilies)
                {
                    Dump(socket, buffer, SockDiagProtocol.DumpRequest(dump.Family, dump.Protocol, dump.States, dump.Filter, sequence++), dump.Transport, dump.Family == SockDiagProtocol.AfInet6, sink);
                    continue;
                }

                try
                {
                    Dump(socket, buffer, SockDiagProtocol.TcpDumpRequestBothFamilies(dump.States, dump.Filter, sequence++), Transport.Tcp, ipv6: false, sink);
                }
                catch (SourceRefusedException)
                {
                    // A kernel without the older request refuses it on the first reply, before any
                    // socket was counted: ask per family instead (a walk each).
                    foreach (var family in new[] { SockDiagProtocol.AfInet, SockDiagProtocol.AfInet6 })
                    {
                        Dump(socket, buffer, SockDiagProtocol.DumpRequest(family, SockDiagProtocol.IpProtoTcp, dump.States, dump.Filter, sequence++), Transport.Tcp, family == SockDiagProtocol.AfInet6, sink);
                    }
                }
            }
        }
        catch (Exception e) when (e is not SourceRefusedException and not CheckException)
        {
            // Whatever else goes wrong in a lane is reported as a failure of this way of reading.
            throw new CheckException($"netlink sock_diag: {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            ReadBuffers.Return(buffer);
        }
    }


    private static void Dump(NetlinkSocket socket, byte[] buffer, byte[] request, Transport transport, bool ipv6, ISocketSink sink)
    {
        var sendError = socket.Send(request);
        if (sendError != 0)
        {
            throw new SourceRefusedException($"sending the sock_diag request failed: {Errno.Describe(sendError)}");
        }

        var first = true;
        while (true)
        {
            var received = socket.Receive(buffer);
            if (received < 0)
            {
                throw new SourceRefusedException($"receiving the sock_diag dump failed: {Errno.Describe(-received)}");
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
                    throw new SourceRefusedException($"the kernel refused the sock_diag dump: {Errno.Describe(error)}");
                }

                throw new CheckException($"netlink sock_diag dump failed: {Errno.Describe(error)}");
            }

            first = false;
        }
    }

    private readonly record struct DumpSpec(bool BothFamilies, byte Family, byte Protocol, Transport Transport, uint States, PortFilter Filter, string Name)
    {
        public static DumpSpec TcpBothFamilies(uint states, PortFilter filter) =>
            new(true, 0, SockDiagProtocol.IpProtoTcp, Transport.Tcp, states, filter, $"tcp {filter}");

        public static DumpSpec Udp(byte family, PortRange ports) =>
            new(false, family, SockDiagProtocol.IpProtoUdp, Transport.Udp, SockDiagProtocol.AllStates, PortFilter.LocalPortIn(ports), $"udp {(family == SockDiagProtocol.AfInet ? "IPv4" : "IPv6")}");
    }

}
