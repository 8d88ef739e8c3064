using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition;

/// <summary>
/// One network namespace as the sources see it: the /proc tree to read its sysctls and tables
/// from, where its tables are below that root (<c>net</c>; <c>thread-self/net</c> for a thread
/// that entered another namespace, since /proc/net follows the process's main thread; a tree's
/// <c>PID/net</c>) and where its sysctls are (<c>sys</c>: /proc/sys follows the opening thread's
/// namespace; a fixture's <c>PID/sys</c>).
/// </summary>
public sealed record NamespaceView(ProcRoot Root, string TablesDirectory = "net", string SysctlDirectory = "sys")
{
    /// <summary>
    /// Whether this is the kernel's own /proc of the calling thread's namespace, which the
    /// kernel interfaces (netlink, BPF) also answer for. Another tree is another host or a fixture.
    /// </summary>
    public bool IsLiveKernel => IsLiveProc(Root.Path);

    public static bool IsLiveProc(string procRoot) => Path.TrimEndingDirectorySeparator(procRoot) == "/proc";
}

/// <summary>
/// What to read of a namespace: which protocols, against which sysctls, with the namespace's
/// socket counters where they could be read (a hint for which walks can find nothing), telling
/// progress where it is.
/// </summary>
public sealed record SourceRequest(NamespaceView View, KernelSettings Kernel, bool Tcp, bool Udp, Action<string>? Progress = null, Sockstat? Counts = null);

/// <summary>What a source said about its reading: a note for <c>-v</c> and diagnostics for <c>-vvv</c>.</summary>
public sealed record SourceReading(string Note, IReadOnlyList<string> Diagnostics);

/// <summary>
/// A way of reading every socket of a namespace into the model (the /proc tables, netlink
/// sock_diag, ...). Each says what it cannot see, so that the report can say it too. A source that
/// the kernel refuses throws <see cref="SourceRefusedException"/>; the next one in the order is tried.
/// </summary>
public interface ISocketSource
{
    /// <summary>The name <c>--source</c> knows it by.</summary>
    string Name { get; }

    /// <summary>What this way of reading cannot see (docs/kernel-model.md, "What each source sees").</summary>
    IReadOnlyList<BlindSpot> BlindSpots { get; }

    /// <summary>Whether it shows how each port was got (bind bucket), so that the bind(addr, 0) figure can be given.</summary>
    bool SeesPortOrigin => false;

    /// <summary>Whether this source can read <paramref name="view"/> at all (the kernel interfaces answer for the live kernel only).</summary>
    bool CanRead(NamespaceView view);

    /// <summary>How the sockets were read, after "sockets read ": in full, or in brief for a fallback note.</summary>
    string Describe(NamespaceView view, bool brief);

    /// <summary>Reads every socket of the namespace into <paramref name="sink"/>.</summary>
    SourceReading Read(SourceRequest request, ISocketSink sink);
}

/// <summary>
/// The kernel refused this way of reading (no permission, not built in, a sandbox). What was put
/// into the sink before the refusal is to be thrown away.
/// </summary>
public sealed class SourceRefusedException(string message) : Exception(message);

/// <summary>A fact a source cannot see, and where it can be seen instead.</summary>
public sealed record BlindSpot(string What, string? SeenBy = null)
{
    public override string ToString() => SeenBy is null ? What : $"{What} ({SeenBy})";
}

/// <summary>The blind spots that more than one source shares.</summary>
public static class BlindSpots
{
    public static readonly BlindSpot BoundButIdle = new("bound-but-idle sockets", "netlink only");

    public static readonly BlindSpot BindBeforeConnect = new("sockets given their port by bind() before connect()");

    public static readonly BlindSpot OrphanedChildren = new("accepted connections that outlived their in-range listener");

    public static readonly BlindSpot SocketRanges = new("per-socket IP_LOCAL_PORT_RANGE");

    public static readonly BlindSpot ReuseAddr = new("SO_REUSEADDR");

    /// <summary>/proc/net/tcp has no column for it; sock_diag (idiag_if) and BPF show it.</summary>
    public static readonly BlindSpot BoundDevice = new("the device a socket is bound to (SO_BINDTODEVICE)", "netlink and bpf");

    public static readonly BlindSpot Timestamps = new("whether timestamps were negotiated");

    /// <summary>What neither the /proc tables nor sock_diag show, and BPF does (docs/kernel-model.md).</summary>
    public static readonly IReadOnlyList<BlindSpot> KernelInternals = [BindBeforeConnect, OrphanedChildren, SocketRanges, ReuseAddr, Timestamps];
}
