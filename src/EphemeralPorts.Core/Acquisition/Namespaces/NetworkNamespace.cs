using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace EphemeralPorts.Acquisition.Namespaces;

/// <summary>
/// A network namespace to check: the nsfs file that opens it (for setns), its inode (its identity),
/// and the name an operator recognises (a named netns, a container id, or a process and pid).
/// </summary>
public sealed record NetworkNamespace(string Path, ulong Inode, string Name)
{
    /// <summary>The path as bytes, where it is not UTF-8 (ip netns add takes any byte but '/'): opened by these.</summary>
    public byte[]? RawPath { get; init; }

    /// <summary>The container whose process led to it (the first 12 hex digits of its id), where one did.</summary>
    public string? Container { get; init; }

    /// <summary>The Kubernetes pod's UID from that process's cgroup, where it has one.</summary>
    public string? Pod { get; init; }

    /// <summary>The process that led to it, where one did (a tree's namespace is read through its PID/net).</summary>
    public int? Pid { get; init; }
}

/// <summary>A namespace or process that could not be looked at, and why.</summary>
public sealed record Skipped(string What, string Why);

/// <summary>
/// Finds network namespaces of a <see cref="Host"/>: from PID/ns/net of its /proc tree and, on a
/// live host, /run/netns (ip netns add), one entry per distinct namespace inode, and names each.
/// Reading another process's ns link needs ptrace access: as an unprivileged user, processes of
/// other users are skipped and counted.
/// </summary>
public static partial class NamespaceFinder
{
    public const string NamedNetnsDirectory = Host.NamedNetnsDirectory;

    /// <summary>The inode of the calling thread's own network namespace.</summary>
    public static ulong OwnInode() => Inode("/proc/thread-self/ns/net") ?? throw new InvalidOperationException("/proc/thread-self/ns/net is not readable");

    public static (List<NetworkNamespace> Found, List<Skipped> Skipped) FindAll(Host host)
    {
        using var root = host.Open();
        var named = host.NamedNamespaces is { } directory ? NamedNamespaces(directory) : [];
        var byInode = new Dictionary<ulong, NetworkNamespace>();
        var skipped = new List<Skipped>();

        // A tree is nobody's own namespace: its PID 1's is the host's, the others are named.
        ulong? own = host.IsLive ? OwnInode() : null;
        var hostInode = HostInode(root);
        foreach (var (name, path, inode, raw) in named)
        {
            byInode.TryAdd(inode, new NetworkNamespace(path, inode, $"netns {name}") { RawPath = raw });
        }

        var pids = (root.ListDirectory(string.Empty, out _) ?? [])
            .Select(d => int.TryParse(d, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0)
            .Order()
            .ToList();
        var denied = 0;
        foreach (var pid in pids)
        {
            var inode = InodeOf(root, pid, out var errno);
            if (inode is null)
            {
                // A process that ended while we looked is not worth a word; a refusal is.
                denied += errno is Native.Errno.Eacces or Native.Errno.Eperm ? 1 : 0;
                continue;
            }

            if (!byInode.ContainsKey(inode.Value))
            {
                var name = inode.Value == hostInode ? "host" : inode.Value == own ? "this check's namespace" : NameOf(root, pid);
                var (container, pod) = inode.Value == hostInode || inode.Value == own ? (null, null) : ContainerOf(root, pid);
                byInode[inode.Value] = new NetworkNamespace(root.Describe($"{pid}/ns/net"), inode.Value, name) { Container = container, Pod = pod, Pid = pid };
            }
        }

        if (denied > 0)
        {
            skipped.Add(new Skipped(denied == 1 ? "the namespace of 1 process" : $"the namespaces of {denied} processes", "/proc/PID/ns/net: permission denied"));
        }

        if (own is { } self && !byInode.ContainsKey(self))
        {
            byInode[self] = new NetworkNamespace("/proc/thread-self/ns/net", self, self == hostInode ? "host" : "this check's namespace");
        }

        // The host's namespace first, then by name.
        var found = byInode.Values.OrderBy(n => n.Inode == hostInode ? 0 : 1).ThenBy(n => n.Name, StringComparer.Ordinal).ToList();
        return (found, skipped);
    }

    /// <summary>The host's namespace is init's; kthreadd (pid 2) lives there too, where init is hidden.</summary>
    private static ulong? HostInode(ProcFs.ProcRoot root) => InodeOf(root, 1, out _) ?? InodeOf(root, 2, out _);

    /// <summary>
    /// The inode of a process's network namespace, from its link (<c>net:[INODE]</c>, as the kernel's
    /// ns_get_name writes it); null with the errno where it cannot be read or is no such link.
    /// </summary>
    public static ulong? InodeOf(ProcFs.ProcRoot root, int pid, out int errno)
    {
        var target = root.ReadLink($"{pid}/ns", "net", out errno);
        if (target is null)
        {
            return null;
        }

        if (target.StartsWith("net:[", StringComparison.Ordinal) && target.EndsWith(']')
            && ulong.TryParse(target.AsSpan(5, target.Length - 6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var inode))
        {
            return inode;
        }

        errno = Native.Errno.Einval;
        return null;
    }

    /// <summary>
    /// <c>--netns NAME|PATH</c>: a name under /run/netns, or any nsfs path. It must be an nsfs
    /// inode, seen with statfs/stat, which open nothing (a FIFO there answers at once instead of
    /// blocking the open for setns); under sudo it is looked up as the invoking user, who cannot
    /// name through the plugin a path they could not reach themselves (another user's
    /// /proc/PID/ns/net: use --pid, which reads the kernel's own /proc).
    /// </summary>
    public static NetworkNamespace ByNameOrPath(Host host, byte[] nameOrPath)
    {
        // Shown escaped: a name may hold any byte but '/'.
        var shown = ProcFs.Excerpt.Escape(nameOrPath);
        if (nameOrPath is [(byte)'.'] or [(byte)'.', (byte)'.'])
        {
            throw new Plugin.CheckException(Plugin.Input.Netns, $"{shown}: not a namespace name");
        }

        byte[] path = Array.IndexOf(nameOrPath, (byte)'/') >= 0 ? nameOrPath : [.. System.Text.Encoding.UTF8.GetBytes(NamedNetnsDirectory + "/"), .. nameOrPath];
        var shownPath = ProcFs.Excerpt.Escape(path);

        // O_PATH opens nothing (a FIFO there answers at once); the file system and the inode are
        // read from that descriptor.
        var (type, inode, errno) = host.AsInvoker(() =>
        {
            var fd = Native.Libc.Openat(Native.Libc.AtFdcwd, path, Native.Libc.OPath | Native.Libc.OCloexec, 0);
            if (fd < 0)
            {
                return ((long?)null, (ulong?)null, Native.Libc.LastError);
            }

            try
            {
                var fsType = Native.Libc.FileSystemType(fd);
                return Native.Libc.TryFstat(fd, out var status) ? (fsType, status.Inode, 0) : (fsType, null, Native.Libc.LastError);
            }
            finally
            {
                Native.Libc.Close(fd);
            }
        });
        if (type is null || inode is null)
        {
            // Under sudo, root is not what was missing: the invoking user may not reach the path.
            var why = errno is Native.Errno.Eacces or Native.Errno.Eperm && host.Invoker is { } user
                ? $"permission denied to uid {user.Uid} ({user.Why})"
                : Describe(errno);
            throw new Plugin.CheckException(Plugin.Input.Netns, $"{shown}: {shownPath}: {why}");
        }

        if (type != Native.Libc.NsfsMagic)
        {
            throw new Plugin.CheckException(Plugin.Input.Netns, $"{shown}: {shownPath}: not a network namespace");
        }

        var named = NamedNamespaces(NamedNetnsDirectory).FirstOrDefault(n => n.Inode == inode);
        var plain = System.Text.Encoding.UTF8.GetString(path) == shownPath;
        return new NetworkNamespace(shownPath, inode.Value, named.Name is { } n ? $"netns {n}" : shownPath) { RawPath = plain ? null : path };
    }

    /// <summary><c>--pid PID</c>: the namespace that process lives in.</summary>
    public static NetworkNamespace ByPid(Host host, int pid)
    {
        using var root = host.Open();
        var path = root.Describe($"{pid}/ns/net");
        var inode = InodeOf(root, pid, out var errno) ?? throw new Plugin.CheckException(Plugin.Input.Pid, $"{pid}: {path}: {Describe(errno)}");
        var named = host.NamedNamespaces is { } directory ? NamedNamespaces(directory).FirstOrDefault(n => n.Inode == inode) : default;
        var name = named.Name is { } n ? $"netns {n}" : inode == HostInode(root) ? "host" : NameOf(root, pid);
        return new NetworkNamespace(path, inode, name) { Pid = pid };
    }

    /// <summary>
    /// What an operator recognises: a container id from the cgroup path (docker, containerd,
    /// cri-o, podman, kubepods), else the command and pid.
    /// </summary>
    public static string NameOf(ProcFs.ProcRoot root, int pid)
    {
        var comm = ProcFs.SocketOwners.Command(root, pid);
        string? cgroup;
        try
        {
            cgroup = root.ReadSmallFile($"{pid}/cgroup", optional: true);
        }
        catch (Plugin.CheckException)
        {
            cgroup = null;
        }

        return ContainerIdIn(cgroup) is { } id ? $"container {id[..12]} ({comm}, pid {pid})" : $"{comm} (pid {pid})";
    }

    /// <summary>The container (12 hex digits) and pod UID of a process, from its cgroup; null where it has none.</summary>
    public static (string? Container, string? Pod) ContainerOf(ProcFs.ProcRoot root, int pid)
    {
        string? cgroup;
        try
        {
            cgroup = root.ReadSmallFile($"{pid}/cgroup", optional: true);
        }
        catch (Plugin.CheckException)
        {
            return (null, null);
        }

        var pod = cgroup is not null && PodUid().Match(cgroup) is { Success: true } m ? m.Groups[1].Value.Replace('_', '-') : null;
        return (ContainerIdIn(cgroup)?[..12], pod);
    }

    /// <summary>The 64-hex-digit container id in the text of /proc/PID/cgroup; null when there is none.</summary>
    public static string? ContainerIdIn(string? cgroup) =>
        cgroup is not null && ContainerId().Match(cgroup) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>
    /// The named namespaces (ip netns add): each file of /run/netns, by its bytes, since a name
    /// need not be UTF-8 and a name that cannot be decoded must still be found and checked. The
    /// name shown is escaped (<see cref="ProcFs.Excerpt.Escape(ReadOnlySpan{byte})"/>).
    /// </summary>
    private static List<(string Name, string Path, ulong Inode, byte[]? Raw)> NamedNamespaces(string directory)
    {
        var list = new List<(string, string, ulong, byte[]?)>();
        var dir = Native.Libc.Openat(Native.Libc.AtFdcwd, directory, Native.Libc.ORdonly | Native.Libc.ODirectory | Native.Libc.OCloexec, 0);
        if (dir < 0)
        {
            return list;
        }

        try
        {
            foreach (var raw in Native.Libc.ListDirectoryRaw(dir).OrderBy(n => n, ByteOrder.Instance))
            {
                if (!Native.Libc.TryStat(dir, raw, 0, out var status))
                {
                    continue;
                }

                var name = ProcFs.Excerpt.Escape(raw);
                var text = IsPlainUtf8(raw) ? System.Text.Encoding.UTF8.GetString(raw) : null;
                list.Add((name, $"{directory}/{text ?? name}", status.Inode, text is null ? [.. System.Text.Encoding.UTF8.GetBytes(directory + "/"), .. raw] : null));
            }
        }
        finally
        {
            Native.Libc.Close(dir);
        }

        return list;
    }

    /// <summary>Whether a name reads the same decoded and escaped: plain printable ASCII.</summary>
    private static bool IsPlainUtf8(byte[] raw) => ProcFs.Excerpt.Escape(raw) == System.Text.Encoding.UTF8.GetString(raw);

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    public static ulong? Inode(string path) => Inode(path, out _);

    /// <summary>stat(2) through libc: the nsfs inode that identifies a namespace.</summary>
    public static ulong? Inode(string path, out int errno)
    {
        Span<byte> stat = stackalloc byte[256];
        if (StatNative(path, stat) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        errno = 0;

        // struct stat on x86_64 and aarch64: st_dev (8 bytes), then st_ino (8 bytes).
        return BitConverter.ToUInt64(stat[8..16]);
    }

    /// <summary>What a failed stat(2) or setns(2) of a namespace file means to an operator.</summary>
    public static string Describe(int errno) => errno switch
    {
        Native.Errno.Enoent => "no such namespace",
        Native.Errno.Eacces or Native.Errno.Eperm => "permission denied (needs root)",
        Native.Errno.Einval => "not a network namespace",
        _ => Native.Errno.Describe(errno),
    };


    private static unsafe int StatNative(string path, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            return stat(path, b);
        }
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int stat(string path, byte* buffer);

    [GeneratedRegex(@"(?:docker|containerd|crio|libpod|cri-containerd|kubepods)[^\n]*?([0-9a-f]{64})")]
    private static partial Regex ContainerId();

    // kubepods[-burstable|-besteffort]-pod<uid>.slice (systemd driver, '_' for '-') or kubepods/.../pod<uid>/ (cgroupfs).
    [GeneratedRegex(@"kubepods[^\n]*?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")]
    private static partial Regex PodUid();
}
