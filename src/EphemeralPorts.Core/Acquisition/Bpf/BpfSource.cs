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
            work.Add(() => counted[0] = Walk(bpf, CepAbi.Iter.Tcp, sink, request.Progress, Many(counts?.TcpSockets)));
        }

        if (request.Udp || boundInactive)
        {
            work.Add(() =>
            {
                if (request.Udp)
                {
                    counted[1] = Walk(bpf, CepAbi.Iter.Udp, sink, request.Progress, Many(counts is { UdpInUse: { } udp } ? udp + (counts.Udp6InUse ?? 0) : null));
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

    // Whether a namespace's sockets (sockstat's count, a hint: null when unknown) are enough
    // records for parsing them beside the walk to gain more than a thread costs: a few chunks.
    private static bool Many(long? sockets) => sockets is not { } n || n >= 3 * ChunkBytes / CepAbi.Record.Size;

    // An iterator of the calling thread's namespace (made here: it walks the namespace of the
    // thread that makes it), read to its end. With many records, on a thread of its own while this
    // one parses: each read() is the kernel walking the hash (~0.6 ms per 32 KiB of records at 50k
    // connections), so the parsing of one chunk overlaps the walk of the next instead of following
    // it. With few (an idle host, most namespaces) there is nothing to overlap, and the thread is
    // not started. The sink takes one chunk's records at a time under its lock, as sock_diag's
    // lanes do.
    private static int Walk(BpfReader bpf, int which, ISocketSink sink, Action<string>? progress, bool overlap)
    {
        var protocol = which == CepAbi.Iter.Tcp ? "tcp" : "udp";
        progress?.Invoke($"bpf iter/{protocol}");
        var fd = bpf.Iterator(which);
        if (!overlap)
        {
            return WalkHere(fd, protocol, sink);
        }

        var records = 0;
        var handedOver = false;
        try
        {
            if (!ReadAhead.Run(
                $"bpf iter/{protocol}",
                PendingChunks,
                () => ReadChunk(fd, protocol),
                chunk =>
                {
                    lock (sink)
                    {
                        records += BpfRecords.Parse(chunk.Buffer.AsSpan(0, chunk.Length), sink);
                    }

                    return false;
                },
                chunk => ReadBuffers.Return(chunk.Buffer)))
            {
                // No thread could be started: read and parse here, one after the other.
                handedOver = true;
                return WalkHere(fd, protocol, sink);
            }

            return records;
        }
        finally
        {
            if (!handedOver)
            {
                _ = BpfNative.Close(fd); // the reader is joined: nothing reads it any more
            }
        }
    }

    private static int WalkHere(int fd, string protocol, ISocketSink sink)
    {
        var records = 0;
        try
        {
            while (ReadChunk(fd, protocol) is { } chunk)
            {
                try
                {
                    lock (sink)
                    {
                        records += BpfRecords.Parse(chunk.Buffer.AsSpan(0, chunk.Length), sink);
                    }
                }
                finally
                {
                    ReadBuffers.Return(chunk.Buffer);
                }
            }

            return records;
        }
        finally
        {
            _ = BpfNative.Close(fd);
        }
    }

    // Chunks read and not yet parsed: the reader runs at most this far ahead (memory stays bounded).
    private const int PendingChunks = 4;

    // Bytes per chunk: two of the kernel's 32 KiB seq buffers, so parsing starts early and the last
    // chunk, which nothing overlaps, is short.
    private const int ChunkBytes = 64 * 1024;


    // One chunk of whole records (cep_bpf_read retries until it is full or the iterator ends), or
    // null at the end.
    private static unsafe (byte[] Buffer, int Length)? ReadChunk(int fd, string protocol)
    {
        var buffer = ReadBuffers.Rent();
        nint read;
        fixed (byte* b = buffer)
        {
            read = BpfNative.Read(fd, b, (nuint)Math.Min(ChunkBytes, buffer.Length));
        }

        if (read > 0)
        {
            return (buffer, (int)read);
        }

        ReadBuffers.Return(buffer);
        return read == 0 ? null : throw new CheckException($"bpf iter/{protocol}: read failed: {Errno.Describe((int)-read)}");
    }
}
