using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Native;

namespace EphemeralPorts.Acquisition;

/// <summary>
/// The host as one run reads it, passed down as a value (prometheus/procfs's <c>NewFS(root)</c>):
/// the /proc tree, the directory of named network namespaces, the user the run acts for, and
/// what the kernel refused so far in this run (openat2). Nothing of it is process-wide: two runs
/// in one process (the tests) do not see each other's.
/// </summary>
/// <remarks>
/// The kernel's own /proc is a <em>live</em> host: its namespaces are entered with setns and read
/// through <c>thread-self/net</c>. Any other directory (a copy, a fixture) is a <em>tree</em>: its
/// namespaces are those its processes' <c>PID/ns/net</c> links name, read from <c>PID/net</c>
/// (where the kernel shows a process's namespace's tables) and <c>PID/sys</c> where the tree has
/// one (a fixture's convention: the kernel shows one set of sysctls, the reader's).
/// </remarks>
public sealed class Host
{
    /// <summary>Where <c>ip netns add</c> keeps named namespaces.</summary>
    public const string NamedNetnsDirectory = "/run/netns";

    private volatile bool _walkPaths;

    /// <param name="procRoot">The /proc tree to read.</param>
    /// <param name="invoker">Who the run acts for when it holds privileges they lack (sudo's invoking user); null when its privileges are its caller's own.</param>
    /// <param name="walkPaths">Open paths by walking them as on a kernel without openat2 (before 5.6): for tests.</param>
    public Host(string procRoot = "/proc", ActingUser? invoker = null, bool walkPaths = false)
    {
        ProcRoot = procRoot;
        Invoker = invoker;
        _walkPaths = walkPaths;
    }

    public string ProcRoot { get; }

    public ActingUser? Invoker { get; }

    /// <summary>Whether <see cref="ProcRoot"/> is the kernel's own /proc, which netlink and BPF answer for too.</summary>
    public bool IsLive => NamespaceView.IsLiveProc(ProcRoot);

    /// <summary>Where named namespaces are: the kernel's for a live host; a tree has none.</summary>
    public string? NamedNamespaces => IsLive ? NamedNetnsDirectory : null;

    /// <summary>
    /// Whether paths are walked by hand: set for good once openat2 is refused (ENOSYS, or a
    /// seccomp filter), so that the rest of the run does not ask again.
    /// </summary>
    public bool WalkPaths
    {
        get => _walkPaths;
        internal set => _walkPaths = value;
    }

    /// <summary>The /proc tree to read (<see cref="ProcRoot"/>), or another path of this host.</summary>
    public ProcRoot Open(string? path = null) => new(path ?? ProcRoot, this);

    /// <summary>The kernel's own /proc, whatever tree is read.</summary>
    public ProcRoot OpenKernel() => new("/proc", this);

    /// <summary><paramref name="work"/> as <see cref="Invoker"/> when there is one, else as the process.</summary>
    public T AsInvoker<T>(Func<T> work) => Invoker is { } user ? Credentials.As(user, work) : work();
}
