using System.Text;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;
using Microsoft.Win32.SafeHandles;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// The /proc tree the check reads: the host's <c>/proc</c>, a host /proc mounted into a container,
/// or a fixture directory. The only code that opens files; every failure becomes a
/// <see cref="CheckException"/> that names the file.
/// </summary>
/// <remarks>
/// Every file is opened relative to a descriptor of the root with openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS), so a symbolic link planted in a tree cannot lead out of it (the
/// kernel's /proc has none that does: net -> self/net stays inside); before Linux 5.6 the path is
/// walked one component at a time with the same rules (<see cref="BeneathWalk"/>). Files are opened
/// non-blocking and must be regular files (a FIFO answers at once, it does not hang the read), and
/// every read has a bound. A tree other than the kernel's own /proc is opened as the invoking
/// user when the plugin runs with privileges they lack (<see cref="Host.Invoker"/>): it
/// cannot make the plugin read, or quote in an error, what that user could not read.
/// </remarks>
public sealed class ProcRoot : IDisposable
{
    /// <summary>Sysctl files are one short line; anything larger is not a sysctl.</summary>
    public const int MaxSmallFileBytes = 64 * 1024;

    private const int SmallFileFirstRead = 1024;
    private readonly SafeFileHandle _root;
    private readonly Host _host;

    /// <summary>Opens <paramref name="path"/> of <paramref name="host"/> (<see cref="Host.Open"/>).</summary>
    internal ProcRoot(string path, Host host)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new CheckException(Input.ProcRoot, "empty path");
        }

        _host = host;
        Path = path;
        Trusted = NamespaceView.IsLiveProc(path);
        var errno = 0;
        var fd = AsReader(() =>
        {
            var opened = Libc.Openat(Libc.AtFdcwd, path, Libc.ORdonly | Libc.ODirectory | Libc.OCloexec, 0);
            errno = opened < 0 ? Libc.LastError : 0;
            return opened;
        });
        if (fd < 0)
        {
            throw new CheckException(Input.ProcRoot, errno switch
            {
                Errno.Enotdir => $"{path}: not a directory",
                Errno.Enoent => $"{path}: no such directory",
                Errno.Eacces or Errno.Eperm => $"{path}: permission denied",
                _ => $"{path}: cannot open: {Errno.Describe(errno)}",
            });
        }

        _root = new SafeFileHandle(fd, ownsHandle: true);
    }

    public string Path { get; }

    /// <summary>The kernel's own /proc: read with the process's privileges (other users' /proc/PID/fd for <c>--processes</c>).</summary>
    public bool Trusted { get; }

    /// <summary>Closes the root's descriptor (a root that is not disposed closes it when collected).</summary>
    public void Dispose() => _root.Dispose();

    /// <summary>Where a relative name lives, as shown in messages.</summary>
    public string Describe(string relative) => System.IO.Path.Join(Path, relative);

    /// <summary>Reads a small text file of at most <paramref name="limit"/> bytes; null when it is optional and absent.</summary>
    public string? ReadSmallFile(string relative, bool optional, int limit = MaxSmallFileBytes)
    {
        var fd = OpenFile(relative, optional);
        if (fd < 0)
        {
            return null;
        }

        // Sysctl files are a line: start small and grow only for a file that keeps going, up to
        // one byte past the limit (so that "larger than" can be told).
        var buffer = new byte[Math.Min(SmallFileFirstRead, limit + 1)];
        var total = 0;
        try
        {
            int read;
            while ((read = Libc.Read(fd, buffer.AsSpan(total))) > 0)
            {
                total += read;
                if (total == buffer.Length)
                {
                    if (buffer.Length > limit)
                    {
                        break;
                    }

                    Array.Resize(ref buffer, Math.Min(buffer.Length * 4, limit + 1));
                }
            }

            if (read < 0)
            {
                throw new CheckException($"{Describe(relative)}: read error: {Errno.Describe(Libc.LastError)}");
            }
        }
        finally
        {
            Libc.Close(fd);
        }

        if (total > limit)
        {
            throw new CheckException(limit == MaxSmallFileBytes
                ? $"{Describe(relative)}: larger than {MaxSmallFileBytes} bytes, not a sysctl file"
                : $"{Describe(relative)}: larger than {limit} bytes");
        }

        if (Array.IndexOf(buffer, (byte)0, 0, total) >= 0)
        {
            throw new CheckException($"{Describe(relative)}: binary content (NUL byte)");
        }

        return Encoding.ASCII.GetString(buffer, 0, total);
    }

    /// <summary>Opens a table for reading line by line; null when it is optional and absent.</summary>
    public ProcLineReader? OpenLines(string relative, bool optional)
    {
        var fd = OpenFile(relative, optional);
        return fd < 0 ? null : new ProcLineReader(new DescriptorStream(fd), Describe(relative));
    }

    /// <summary>The names in a directory of the tree; null with the errno when it cannot be listed.</summary>
    public List<string>? ListDirectory(string relative, out int errno)
    {
        var fd = Open(relative, Libc.ORdonly | Libc.ODirectory, out errno);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            return Libc.ListDirectory(fd);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    /// <summary>
    /// Every entry of a directory of links (/proc/PID/fd) and where it points; null with the errno
    /// when the directory cannot be read. readlink of /proc/PID/fd/N is checked by the kernel at
    /// that moment (ptrace access), so it runs as the reader too.
    /// </summary>
    public List<(string Name, string? Target)>? ReadLinks(string relative, out int errno)
    {
        var error = 0;
        var links = AsReader(() =>
        {
            var fd = OpenBeneath(relative, Libc.ORdonly | Libc.ODirectory, out error);
            if (fd < 0)
            {
                return null;
            }

            try
            {
                return Libc.ListDirectory(fd).Select(name => (name, Libc.ReadLink(fd, name))).ToList();
            }
            finally
            {
                Libc.Close(fd);
            }
        });
        errno = error;
        return links;
    }

    /// <summary>
    /// Where one link of the tree points (readlinkat on its directory, never followed), or null
    /// with the errno. For /proc/PID/ns/net the kernel checks ptrace access as for stat(2), so a
    /// tree's namespace links and the kernel's are read the same way.
    /// </summary>
    public string? ReadLink(string directory, string name, out int errno)
    {
        if (Trusted)
        {
            // The kernel's own /proc has no link planted in it: one readlinkat from the root, not
            // three calls per process (--all-namespaces reads one link for every process).
            var direct = Libc.ReadLink((int)_root.DangerousGetHandle(), $"{directory}/{name}");
            errno = direct is null ? Libc.LastError : 0;
            return direct;
        }

        var error = 0;
        var target = AsReader(() =>
        {
            var fd = OpenBeneath(directory, Libc.OPath | Libc.ODirectory, out error);
            if (fd < 0)
            {
                return null;
            }

            try
            {
                var link = Libc.ReadLink(fd, name);
                error = link is null ? Libc.LastError : 0;
                return link;
            }
            finally
            {
                Libc.Close(fd);
            }
        });
        errno = error;
        return target;
    }

    /// <summary>A regular file of the tree, opened for reading; -1 when it is optional and absent.</summary>
    private int OpenFile(string relative, bool optional)
    {
        var path = Describe(relative);
        var fd = Open(relative, Libc.ORdonly, out var errno);
        if (fd < 0)
        {
            return errno is Errno.Enoent or Errno.Enotdir && optional ? -1 : throw new CheckException($"{path}: {Why(errno)}");
        }

        if (!Libc.TryFstat(fd, out var status) || !status.IsRegular)
        {
            Libc.Close(fd);
            throw new CheckException(status.IsDirectory ? $"{path}: is a directory" : $"{path}: not a regular file ({status.Kind})");
        }

        return fd;
    }

    private static string Why(int errno) => errno switch
    {
        Errno.Enoent or Errno.Enotdir => "no such file",
        Errno.Eacces or Errno.Eperm => "permission denied",
        Errno.Exdev => "a symbolic link leads out of the tree",
        Errno.Eloop => "too many symbolic links, or a link into another process's files",
        _ => $"cannot open: {Errno.Describe(errno)}",
    };

    private int Open(string relative, int flags, out int errno)
    {
        var error = 0;
        var fd = AsReader(() => OpenBeneath(relative, flags, out error));
        errno = error;
        return fd;
    }

    /// <summary>Runs an open as the invoking user unless this is the kernel's own /proc.</summary>
    private T AsReader<T>(Func<T> open) => Trusted ? open() : _host.AsInvoker(open);

    /// <summary>
    /// Opens <paramref name="relative"/> below the root, never leaving it and never through a magic
    /// link; O_NONBLOCK so that a FIFO does not block the open.
    /// </summary>
    private int OpenBeneath(string relative, int flags, out int errno)
    {
        // openat2 refuses O_PATH with flags that only mean something to an open file (EINVAL).
        flags |= (flags & Libc.OPath) != 0 ? Libc.OCloexec : Libc.ONonblock | Libc.ONoctty | Libc.OCloexec;
        var path = relative.Length == 0 ? "." : relative;
        var root = (int)_root.DangerousGetHandle();
        if (!_host.WalkPaths)
        {
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var fd = Libc.Openat2(root, path, (ulong)flags, Libc.ResolveBeneath | Libc.ResolveNoMagiclinks);
                errno = fd < 0 ? Libc.LastError : 0;
                if (fd >= 0 || (errno != Errno.Eagain && errno != Errno.Enosys && errno != Errno.Eperm))
                {
                    return fd;
                }

                // Before Linux 5.6 (ENOSYS), or a seccomp filter that refuses the call: ENOSYS in
                // newer systemd and container profiles, EPERM in systemd before v248
                // (RestrictSUIDSGID) and some runtimes' profiles. A file may answer EPERM too, so
                // the root itself is asked: no file's permissions refuse reopening it.
                if (errno == Errno.Enosys || (errno == Errno.Eperm && Openat2Filtered(root)))
                {
                    // Walk the path ourselves, with the same rules.
                    _host.WalkPaths = true;
                    break;
                }

                if (errno == Errno.Eperm)
                {
                    return fd;
                }
            }
        }

        return BeneathWalk.Open(root, path, flags, out errno);
    }

    /// <summary>Whether openat2 itself is refused (a seccomp filter), not the file: reopening the root with O_PATH is refused too.</summary>
    private static bool Openat2Filtered(int root)
    {
        var fd = Libc.Openat2(root, ".", (ulong)(Libc.OPath | Libc.ODirectory | Libc.OCloexec), Libc.ResolveBeneath);
        if (fd >= 0)
        {
            Libc.Close(fd);
            return false;
        }

        return Libc.LastError is Errno.Eperm or Errno.Enosys;
    }

    /// <summary>A descriptor read with read(2): /proc files report a length of 0, so no buffering or seeking.</summary>
    private sealed class DescriptorStream(int fd) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Libc.Read(fd, buffer);
            return n >= 0 ? n : throw new IOException(Errno.Describe(Libc.LastError));
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Libc.Close(fd);
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS by hand, for kernels without openat2: one component at
/// a time from the root descriptor, never letting the kernel follow a link. A relative link is
/// read (readlinkat) and its components walked in turn; an absolute one, or ".." above the root,
/// is EXDEV; a /proc magic link reads as "/path" or "socket:[N]" and leads nowhere inside.
/// </summary>
internal static class BeneathWalk
{
    private const int MaxLinks = 40;

    public static int Open(int root, string relative, int flags, out int errno)
    {
        var pending = new LinkedList<string>(relative.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var stack = new List<int> { root };
        var links = 0;
        try
        {
            while (pending.First is { } first)
            {
                var name = first.Value;
                pending.RemoveFirst();
                var current = stack[^1];
                if (name == ".")
                {
                    continue;
                }

                if (name == "..")
                {
                    if (stack.Count == 1)
                    {
                        errno = Errno.Exdev;
                        return -1;
                    }

                    Libc.Close(stack[^1]);
                    stack.RemoveAt(stack.Count - 1);
                    continue;
                }

                if (!Libc.TryStat(current, name, Libc.AtSymlinkNofollow, out var status))
                {
                    errno = Libc.LastError;
                    return -1;
                }

                if (status.Type == Libc.SIflnk)
                {
                    var target = Libc.ReadLink(current, name);
                    if (++links > MaxLinks || target is null)
                    {
                        errno = Errno.Eloop;
                        return -1;
                    }

                    if (target.StartsWith('/'))
                    {
                        errno = Errno.Exdev;
                        return -1;
                    }

                    var parts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
                    for (var i = parts.Length - 1; i >= 0; i--)
                    {
                        pending.AddFirst(parts[i]);
                    }

                    continue;
                }

                if (pending.Count == 0)
                {
                    var fd = Libc.Openat(current, name, flags | Libc.ONofollow, 0);
                    errno = fd < 0 ? Libc.LastError : 0;
                    return fd;
                }

                var dir = Libc.Openat(current, name, Libc.OPath | Libc.ODirectory | Libc.ONofollow | Libc.OCloexec, 0);
                if (dir < 0)
                {
                    errno = Libc.LastError;
                    return -1;
                }

                stack.Add(dir);
            }

            // The path named a directory already walked (".", "a/.."): open it again for reading.
            var again = Libc.Openat(stack[^1], ".", flags, 0);
            errno = again < 0 ? Libc.LastError : 0;
            return again;
        }
        finally
        {
            for (var i = 1; i < stack.Count; i++)
            {
                Libc.Close(stack[i]);
            }
        }
    }
}
