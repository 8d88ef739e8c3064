using System.Text;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Model;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// The process's one BPF reader: opened once (a pinned copy from an earlier run, or the embedded
/// CO-RE program loaded and pinned), then an iterator per namespace and protocol. The kernel's
/// refusal is kept with its reason, so every namespace is told the same.
/// </summary>
public static class BpfReader
{
    private static readonly Lock Gate = new();
    private static (int Handle, string Note)? _opened;
    private static string? _refusal;

    /// <summary>The handle and how it was opened; a refusal as <see cref="SourceRefusedException"/>.</summary>
    public static (int Handle, string Note) Open()
    {
        lock (Gate)
        {
            if (_opened is { } opened)
            {
                return opened;
            }

            if (_refusal is not null)
            {
                throw new SourceRefusedException(_refusal);
            }

            try
            {
                _opened = OpenNative();
                return _opened.Value;
            }
            catch (SourceRefusedException e)
            {
                _refusal = e.Message;
                throw;
            }
        }
    }

    private static unsafe (int, string) OpenNative()
    {
        int handle;
        var why = new byte[512];
        try
        {
            if (BpfNative.RecordSize() != BpfRecords.Size || BpfNative.RecordVersion() != BpfRecords.Version)
            {
                throw new SourceRefusedException($"the linked BPF reader writes records of another layout ({BpfNative.RecordSize()} bytes, version {BpfNative.RecordVersion()})");
            }

            fixed (byte* text = why)
            {
                handle = BpfNative.Open(0, text, (nuint)why.Length);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new SourceRefusedException("this build has no BPF reader (libcep_bpf is not linked in)");
        }

        var said = Encoding.UTF8.GetString(why, 0, Math.Max(0, Array.IndexOf(why, (byte)0))).Trim();
        if (handle <= 0)
        {
            throw new SourceRefusedException(said.Length > 0 ? said : $"cep_bpf_open: {Errno.Describe(-handle)}");
        }

        var mode = BpfNative.Mode(handle) switch
        {
            1 => "a pinned iterator",
            2 => "the program, loaded and pinned for later runs",
            4 => "the program, loaded for this run from the load cache (no BTF parsed)",
            _ => "the program, loaded for this run",
        };
        return (handle, said.Length > 0 ? $"{mode} ({said})" : mode);
    }
}

/// <summary>
/// Sockets through the kernel's BPF socket iterators (<c>iter/tcp</c>, <c>iter/udp</c>; the
/// program is src/native/ports.bpf.c): the bind bucket of each port (bind() before connect(),
/// accepted children), a TIME_WAIT's own timestamps and age, per-socket port ranges. Sockets bound
/// but neither listening nor connected are in no hash an iterator walks: sock_diag's bound-inactive
/// dump adds them, on a second thread while the TCP walk runs. Needs CAP_BPF and CAP_PERFMON (root),
/// BTF and a kernel with socket iterators; reads the calling thread's namespace.
/// </summary>
public sealed class BpfSource : ISocketSource
{
    public static readonly BpfSource Instance = new();

    private BpfSource()
    {
    }

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
        var (handle, how) = BpfReader.Open();
        var range = request.Kernel.Range;
        var counts = request.Counts;
        var boundInactive = request.Tcp && counts?.ProvesNoBoundInactiveTcp != true;
        var diagnostics = new List<string> { $"bpf: read {how}" };
        var counted = new int[2];
        var work = new List<Action>();
        if (request.Tcp)
        {
            work.Add(() => counted[0] = Walk(handle, BpfNative.Tcp, sink, request.Progress));
        }

        if (request.Udp || boundInactive)
        {
            work.Add(() =>
            {
                if (request.Udp)
                {
                    counted[1] = Walk(handle, BpfNative.Udp, sink, request.Progress);
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
    private static unsafe int Walk(int handle, int which, ISocketSink sink, Action<string>? progress)
    {
        var protocol = which == BpfNative.Tcp ? "tcp" : "udp";
        progress?.Invoke($"bpf iter/{protocol}");
        var fd = BpfNative.Iterator(handle, which);
        if (fd < 0)
        {
            throw new SourceRefusedException($"creating the iter/{protocol} iterator failed: {Errno.Describe(-fd)}");
        }

        // Records are 68 bytes (BpfRecords.Size): a read takes up to 3,855 of them.
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
