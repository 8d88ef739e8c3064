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
}

/// <summary>A namespace or process that could not be looked at, and why.</summary>
public sealed record Skipped(string What, string Why);

/// <summary>
/// Finds network namespaces from /proc/*/ns/net and /run/netns (ip netns add), one entry per
/// distinct namespace inode, and names each. Reading another process's ns link needs ptrace
/// access: as an unprivileged user, processes of other users are skipped and counted.
/// </summary>
public static partial class NamespaceFinder
{
    public const string NamedNetnsDirectory = "/run/netns";

    /// <summary>The inode of the calling thread's own network namespace.</summary>
    public static ulong OwnInode() => Inode("/proc/thread-self/ns/net") ?? throw new InvalidOperationException("/proc/thread-self/ns/net is not readable");

    public static (List<NetworkNamespace> Found, List<Skipped> Skipped) FindAll()
    {
        const string procRoot = "/proc";
        var named = NamedNamespaces();
        var byInode = new Dictionary<ulong, NetworkNamespace>();
        var skipped = new List<Skipped>();
        var own = OwnInode();
        var host = HostInode(procRoot);
        foreach (var (name, path, inode, raw) in named)
        {
            byInode.TryAdd(inode, new NetworkNamespace(path, inode, $"netns {name}") { RawPath = raw });
        }

        var pids = Directory.EnumerateDirectories(procRoot)
            .Select(d => int.TryParse(System.IO.Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0)
            .Order()
            .ToList();
        var denied = 0;
        foreach (var pid in pids)
        {
            var path = $"{procRoot}/{pid}/ns/net";
            var inode = Inode(path, out var errno);
            if (inode is null)
            {
                // A process that ended while we looked is not worth a word; a refusal is.
                denied += errno is Native.Errno.Eacces or Native.Errno.Eperm ? 1 : 0;
                continue;
            }

            if (!byInode.ContainsKey(inode.Value))
            {
                var name = inode.Value == host ? "host" : inode.Value == own ? "this check's namespace" : NameOf(procRoot, pid);
                var (container, pod) = inode.Value == host || inode.Value == own ? (null, null) : ContainerOf(procRoot, pid);
                byInode[inode.Value] = new NetworkNamespace(path, inode.Value, name) { Container = container, Pod = pod };
            }
        }

        if (denied > 0)
        {
            skipped.Add(new Skipped(denied == 1 ? "the namespace of 1 process" : $"the namespaces of {denied} processes", "/proc/PID/ns/net: permission denied"));
        }

        if (!byInode.ContainsKey(own))
        {
            byInode[own] = new NetworkNamespace("/proc/thread-self/ns/net", own, own == host ? "host" : "this check's namespace");
        }

        // The host's namespace first, then by name.
        var found = byInode.Values.OrderBy(n => n.Inode == host ? 0 : 1).ThenBy(n => n.Name, StringComparer.Ordinal).ToList();
        return (found, skipped);
    }

    /// <summary>The host's namespace is init's; kthreadd (pid 2) lives there too, where init is hidden.</summary>
    private static ulong? HostInode(string procRoot) => Inode($"{procRoot}/1/ns/net") ?? Inode($"{procRoot}/2/ns/net");

    /// <summary>
    /// <c>--netns NAME|PATH</c>: a name under /run/netns, or any nsfs path. It must be an nsfs
    /// inode, seen with statfs/stat, which open nothing (a FIFO there answers at once instead of
    /// blocking the open for setns); under sudo it is looked up as the invoking user, who cannot
    /// name through the plugin a path they could not reach themselves (another user's
    /// /proc/PID/ns/net: use --pid, which reads the kernel's own /proc).
    /// </summary>
    public static NetworkNamespace ByNameOrPath(byte[] nameOrPath)
    {
        // Shown escaped: a name may hold any byte but '/'.
        var shown = ProcFs.Excerpt.Escape(nameOrPath);
        if (nameOrPath is [(byte)'.'] or [(byte)'.', (byte)'.'])
        {
            throw new Plugin.CheckException($"--netns {shown}: not a namespace name");
        }

        byte[] path = Array.IndexOf(nameOrPath, (byte)'/') >= 0 ? nameOrPath : [.. System.Text.Encoding.UTF8.GetBytes(NamedNetnsDirectory + "/"), .. nameOrPath];
        var shownPath = ProcFs.Excerpt.Escape(path);

        // O_PATH opens nothing (a FIFO there answers at once); the file system and the inode are
        // read from that descriptor.
        var (type, inode, errno) = Native.Credentials.AsInvoker(() =>
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
            var why = errno is Native.Errno.Eacces or Native.Errno.Eperm && Native.Credentials.Invoker is { } user
                ? $"permission denied to uid {user.Uid} ({user.Why})"
                : Describe(errno);
            throw new Plugin.CheckException($"--netns {shown}: {shownPath}: {why}");
        }

        if (type != Native.Libc.NsfsMagic)
        {
            throw new Plugin.CheckException($"--netns {shown}: {shownPath}: not a network namespace");
        }

        var named = NamedNamespaces().FirstOrDefault(n => n.Inode == inode);
        var plain = System.Text.Encoding.UTF8.GetString(path) == shownPath;
        return new NetworkNamespace(shownPath, inode.Value, named.Name is { } n ? $"netns {n}" : shownPath) { RawPath = plain ? null : path };
    }

    /// <summary><c>--pid PID</c>: the namespace that process lives in.</summary>
    public static NetworkNamespace ByPid(int pid, string procRoot = "/proc")
    {
        var path = $"{procRoot}/{pid}/ns/net";
        var inode = Inode(path, out var errno) ?? throw new Plugin.CheckException($"--pid {pid}: {path}: {Describe(errno)}");
        var named = NamedNamespaces().FirstOrDefault(n => n.Inode == inode);
        var name = named.Name is { } n ? $"netns {n}" : inode == HostInode(procRoot) ? "host" : NameOf(procRoot, pid);
        return new NetworkNamespace(path, inode, name);
    }

    /// <summary>
    /// What an operator recognises: a container id from the cgroup path (docker, containerd,
    /// cri-o, podman, kubepods), else the command and pid.
    /// </summary>
    public static string NameOf(string procRoot, int pid)
    {
        using var root = new ProcFs.ProcRoot(procRoot);
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
    public static (string? Container, string? Pod) ContainerOf(string procRoot, int pid)
    {
        string? cgroup;
        try
        {
            using var root = new ProcFs.ProcRoot(procRoot);
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
    private static List<(string Name, string Path, ulong Inode, byte[]? Raw)> NamedNamespaces()
    {
        var list = new List<(string, string, ulong, byte[]?)>();
        var dir = Native.Libc.Openat(Native.Libc.AtFdcwd, NamedNetnsDirectory, Native.Libc.ORdonly | Native.Libc.ODirectory | Native.Libc.OCloexec, 0);
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
                list.Add((name, $"{NamedNetnsDirectory}/{text ?? name}", status.Inode, text is null ? [.. System.Text.Encoding.UTF8.GetBytes(NamedNetnsDirectory + "/"), .. raw] : null));
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
