using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Model;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// Sockets through the kernel's BPF socket iterators (<c>iter/tcp</c>, <c>iter/udp</c>; the
/// program is src/native/ports.bpf.c): the bind bucket of each port (bind() before connect(),
/// accepted children), a TIME_WAIT's own timestamps and age, per-socket port ranges. Sockets bound
/// but neither listening nor connected are in no hash an iterator walks: sock_diag's bound-inactive
/// dump adds them, on a second thread while the TCP walk runs. Needs CAP_BPF and CAP_PERFMON (root),
/// BTF and a kernel with socket iterators; reads the calling thread's namespace. The reader comes
/// from the run (<see cref="OpenOnce{T}"/>): opened by the first namespace that reads, shared by
/// the others, refused once for all of them.
/// </summary>
public sealed class BpfSource(OpenOnce<BpfReader> reader) : ISocketSource
{
    /// <summary>A run's reader, not opened yet: <see cref="BpfReader.Open"/> with the default flags on first use.</summary>
    public static OpenOnce<BpfReader> NewReader() => new(() => BpfReader.Open());

    public string Name => "bpf";

    /// <summary>What was not proven against the kernel, so not counted (docs/kernel-model.md).</summary>
    public IReadOnlyList<BlindSpot> BlindSpots { get; } =
    [
        new("SO_REUSEPORT and SO_BINDTODEVICE in bind(addr, 0)'s conflicts"),
    ];

    public bool SeesPortOrigin => true;

    public bool CanRead(NamespaceView view) => view.IsLiveKernel;

    public string Describe(NamespaceView view, bool brief) =>
        brief ? "through BPF socket iterators" : "through BPF socket iterators (bound-but-idle sockets through sock_diag)";

    public SourceReading Read(SourceRequest request, ISocketSink sink)
    {
        var bpf = reader.Get();
        var range = request.Kernel.Range;
        var counts = request.Counts;
        var boundInactive = request.Tcp && counts?.ProvesNoBoundInactiveTcp != true;
        var diagnostics = new List<string> { $"bpf: read {bpf.Note}" };
        var counted = new int[2];
        var work = new List<Action>();
        if (request.Tcp)
        {
            work.Add(() => counted[0] = Walk(bpf, CepAbi.Iter.Tcp, sink, request.Progress));
        }

        if (request.Udp || boundInactive)
        {
            work.Add(() =>
            {
                if (request.Udp)
                {
                    counted[1] = Walk(bpf, CepAbi.Iter.Udp, sink, request.Progress);
                }

                if (boundInactive)
                {
                    request.Progress?.Invoke("netlink sock_diag: bound-but-idle sockets");
                    SockDiagScanner.ScanBoundInactive(range, sink, request.Progress);
                }
            });
        }

        Workers.RunAll("bpf", work);
        diagnostics.Add($"bpf: {counted[0]} TCP and {counted[1]} UDP records");
        diagnostics.Add(boundInactive ? "sock_diag: bound-but-idle sockets dumped" : "sock_diag: no bound-but-idle socket possible (sockstat), not dumped");
        return new SourceReading($"sockets read {Describe(request.View, brief: false)}", diagnostics);
    }

    // An iterator of the calling thread's namespace, read to its end a buffer at a time; the sink
    // takes one buffer's records at a time under its lock, as sock_diag's lanes do.
    private static unsafe int Walk(BpfReader bpf, int which, ISocketSink sink, Action<string>? progress)
    {
        var protocol = which == CepAbi.Iter.Tcp ? "tcp" : "udp";
        progress?.Invoke($"bpf iter/{protocol}");
        var fd = bpf.Iterator(which);

        // Records are CepAbi.Record.Size (68) bytes: a read takes up to 3,855 of them.
        var buffer = ReadBuffers.Rent();
        var records = 0;
        try
        {
            while (true)
            {
                nint read;
                fixed (byte* b = buffer)
                {
                    read = BpfNative.Read(fd, b, (nuint)buffer.Length);
                }

                if (read < 0)
                {
                    throw new CheckException($"bpf iter/{protocol}: read failed: {Errno.Describe((int)-read)}");
                }

                if (read == 0)
                {
                    return records;
                }

                lock (sink)
                {
                    records += BpfRecords.Parse(buffer.AsSpan(0, (int)read), sink);
                }
            }
        }
        finally
        {
            _ = BpfNative.Close(fd);
            ReadBuffers.Return(buffer);
        }
    }
}
