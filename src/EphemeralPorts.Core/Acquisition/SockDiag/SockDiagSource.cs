using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.SockDiag;

/// <summary>
/// Sockets through netlink sock_diag (<see cref="SockDiagScanner"/>): filtered in the kernel to
/// the range, and it sees sockets that are bound but idle. It answers for the network namespace
/// of the calling thread, so it reads only the live /proc's namespace; the kernel may refuse it
/// (a sandbox, qemu-user, a kernel without inet_diag).
/// </summary>
public sealed class SockDiagSource : ISocketSource
{
    public static readonly SockDiagSource Instance = new();

    private SockDiagSource()
    {
    }

    public string Name => "netlink";

    public IReadOnlyList<BlindSpot> BlindSpots => Acquisition.BlindSpots.KernelInternals;

    public bool CanRead(NamespaceView view) => view.IsLiveKernel;

    public string Describe(NamespaceView view, bool brief) =>
        brief ? "through netlink sock_diag" : "through netlink sock_diag, filtered in the kernel to the range";

    public SourceReading Read(SourceRequest request, ISocketSink sink)
    {
        var diagnostics = new List<string>();
        var counts = request.Counts;

        // How the dump is split only: a hint that cannot be read leaves the parallel lanes.
        var hint = counts?.TcpSockets;
        if (request.Tcp)
        {
            var seen = hint is null ? "sockstat unreadable" : $"{hint} TCP socket{(hint == 1 ? "" : "s")} in the namespace (sockstat)";
            diagnostics.Add(hint < SockDiagScanner.ParallelFromTcpSockets
                ? $"netlink: {seen}, one lane"
                : $"netlink: {seen}, TCP dumped in two lanes by port, UDP in a third");
        }

        // Each UDP dump walks the UDP hash of every namespace: not for a family with no socket here.
        var udp4 = request.Udp && counts?.ProvesNoUdp(ipv6: false) != true;
        var udp6 = request.Udp && counts?.ProvesNoUdp(ipv6: true) != true;
        foreach (var (family, dumped) in new[] { ("IPv4", udp4), ("IPv6", udp6) })
        {
            if (request.Udp && !dumped)
            {
                diagnostics.Add($"netlink: no {family} UDP socket in the namespace (sockstat), not dumped");
            }
        }

        var boundInactive = counts?.ProvesNoBoundInactiveTcp != true;
        if (request.Tcp && !boundInactive)
        {
            diagnostics.Add("netlink: every socket of the namespace is a hashed one (sockstat): the bind hash is not walked for bound-but-idle sockets");
        }

        SockDiagScanner.Scan(request.Kernel.Range, request.Tcp, request.Udp, sink, request.Progress, hint, udp4, udp6, boundInactive);
        return new SourceReading($"sockets read {Describe(request.View, brief: false)}", diagnostics);
    }
}
