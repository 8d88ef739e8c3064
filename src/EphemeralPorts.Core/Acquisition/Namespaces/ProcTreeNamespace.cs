using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.Namespaces;

/// <summary>
/// Which network namespace a proc tree given with <c>--proc-root</c> shows. A live procfs mounted
/// elsewhere (a host's /proc in a container) is the trap: its <c>net</c> is a link to
/// <c>self/net</c>, the reader's own tables, and <c>sys/net/*</c> are the reader's sysctls
/// (proc_sys_net follows the opening task's namespace), so its files describe the container, not
/// the host. The namespace the tree stands for is that of its PID 1; when it is not this check's,
/// it must be entered (root) or the answer is UNKNOWN.
/// </summary>
public static class ProcTreeNamespace
{
    /// <summary>PROC_SUPER_MAGIC (include/uapi/linux/magic.h).</summary>
    public const long ProcSuperMagic = 0x9fa0;

    /// <summary>
    /// Null when the tree is read as it is: this host's /proc, a plain directory (a fixture or a
    /// copy), or a procfs whose PID 1 lives in this check's namespace. Otherwise the namespace of
    /// that PID 1, to be entered. Throws when the namespace cannot be told.
    /// </summary>
    public static NetworkNamespace? Foreign(Host host)
    {
        var procRoot = host.ProcRoot;
        if (host.IsLive)
        {
            return null;
        }

        var type = host.AsInvoker(() => Libc.FileSystemType(procRoot, out _));
        if (type != ProcSuperMagic)
        {
            return null;
        }

        var init = System.IO.Path.Join(procRoot, "1/ns/net");
        var errno = 0;
        var inode = host.AsInvoker(() => NamespaceFinder.Inode(init, out errno));
        if (inode is null && IsKthreadd(host))
        {
            // Init may refuse being looked at (not dumpable); in the host's tree kthreadd, PID 2,
            // always lives in the initial network namespace with it.
            var kthreadd = System.IO.Path.Join(procRoot, "2/ns/net");
            if (host.AsInvoker(() => NamespaceFinder.Inode(kthreadd, out _)) is { } found)
            {
                (init, inode) = (kthreadd, found);
            }
        }

        if (inode is null)
        {
            throw new CheckException(Input.ProcRoot, $"{procRoot} is a live /proc, but which network namespace it shows cannot be told ({init}: {NamespaceFinder.Describe(errno)}). "
                + "Its tables would be this process's own", Remedy.EnterTheNamespace);
        }

        if (inode == NamespaceFinder.OwnInode())
        {
            return null;
        }

        // Reading it means entering it: say up front what is missing instead of a bare setns error.
        if (!Credentials.HasEffective(Credentials.CapSysAdmin))
        {
            throw new CheckException(Input.ProcRoot, $"{procRoot} shows network namespace net:[{inode}], this process runs in another one and may not enter it (needs CAP_SYS_ADMIN)", Remedy.EnterTheNamespace);
        }

        return new NetworkNamespace(init, inode.Value, $"{(init.EndsWith("/2/ns/net", StringComparison.Ordinal) ? "PID 2 (kthreadd)" : "PID 1")} of {procRoot}");
    }

    /// <summary>Whether the host's tree is a procfs (a live /proc, here or mounted elsewhere), not a plain directory.</summary>
    public static bool IsLiveProcfs(Host host) => host.AsInvoker(() => Libc.FileSystemType(host.ProcRoot, out _)) == ProcSuperMagic;

    private static bool IsKthreadd(Host host)
    {
        try
        {
            using var root = host.Open();
            return root.ReadSmallFile("2/comm", optional: true)?.TrimEnd('\n') == "kthreadd";
        }
        catch (CheckException)
        {
            return false;
        }
    }
}
