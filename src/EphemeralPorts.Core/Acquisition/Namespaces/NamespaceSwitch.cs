using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EphemeralPorts.Acquisition.Namespaces;

/// <summary>
/// setns(2) with CLONE_NEWNET for the calling thread only (namespaces are per thread in Linux).
/// <see cref="NamespaceRunner"/> runs this on a thread of its own, so the rest of the process never
/// leaves its namespace; <see cref="Dispose"/> switches back all the same, and says so loudly
/// when it cannot: whatever ran after it on this thread would read the wrong namespace.
/// </summary>
public sealed partial class NamespaceSwitch : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private readonly SafeFileHandle _home;

    private NamespaceSwitch(SafeFileHandle home) => _home = home;

    /// <summary>
    /// Enters the namespace at <paramref name="path"/>; null and the errno when refused. With
    /// <paramref name="expectedInode"/> (the inode <see cref="NamespaceFinder"/> saw, as the user
    /// who ran sudo), a different file put at the path since is refused (EINVAL).
    /// </summary>
    public static NamespaceSwitch? Enter(string path, out int errno, ulong? expectedInode = null) =>
        Enter(System.Text.Encoding.UTF8.GetBytes(path), out errno, expectedInode);

    /// <summary>As <see cref="Enter(string, out int, ulong?)"/>, for a path given as bytes (a name that is not UTF-8).</summary>
    public static NamespaceSwitch? Enter(byte[] path, out int errno, ulong? expectedInode = null)
    {
        var home = File.OpenHandle("/proc/thread-self/ns/net");
        try
        {
            // Non-blocking, and only an nsfs file: a FIFO put at the path after it was looked at
            // answers at once instead of blocking this open until the timeout.
            var fd = Native.Libc.Openat(Native.Libc.AtFdcwd, path, Native.Libc.ORdonly | Native.Libc.ONonblock | Native.Libc.ONoctty | Native.Libc.OCloexec, 0);
            if (fd < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                home.Dispose();
                return null;
            }

            using var target = new SafeFileHandle(fd, ownsHandle: true);
            if (Native.Libc.FileSystemType(fd) != Native.Libc.NsfsMagic
                || (expectedInode is { } inode && (!Native.Libc.TryFstat(fd, out var status) || status.Inode != inode)))
            {
                errno = Native.Errno.Einval;
                home.Dispose();
                return null;
            }

            if (setns(target, CloneNewNet) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                home.Dispose();
                return null;
            }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            errno = e is UnauthorizedAccessException ? Native.Errno.Eacces : Native.Errno.Enoent;
            home.Dispose();
            return null;
        }

        errno = 0;
        return new NamespaceSwitch(home);
    }

    public void Dispose()
    {
        var failed = setns(_home, CloneNewNet) != 0;
        var errno = failed ? Marshal.GetLastPInvokeError() : 0;
        _home.Dispose();
        if (failed)
        {
            throw new InvalidOperationException($"setns back to this thread's own network namespace failed: {Native.Errno.Describe(errno)}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(SafeFileHandle fd, int nstype);
}
