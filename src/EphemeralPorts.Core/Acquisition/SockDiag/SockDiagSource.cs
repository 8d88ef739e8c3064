using EphemeralPorts.Acquisition.ProcFs;
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

        // How the dump is split only: a hint that cannot be read leaves the parallel lanes.
        long? hint = null;
        if (request.Tcp)
        {
            hint = new SysctlReader(request.View.Root, request.Progress, request.View.TablesDirectory).TcpSocketCountHint();
            var seen = hint is null ? "sockstat unreadable" : $"{hint} TCP socket{(hint == 1 ? "" : "s")} in the namespace (sockstat)";
            diagnostics.Add(hint < SockDiagScanner.ParallelFromTcpSockets
                ? $"netlink: {seen}, one lane"
                : $"netlink: {seen}, TCP dumped in two lanes by port, UDP in a third");
        }

        SockDiagScanner.Scan(request.Kernel.Range, request.Tcp, request.Udp, sink, request.Progress, hint);
        return new SourceReading($"sockets read {Describe(request.View, brief: false)}", diagnostics);
    }
}
