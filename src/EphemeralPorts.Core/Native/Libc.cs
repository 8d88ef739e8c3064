using System.Runtime.InteropServices;

namespace EphemeralPorts.Native;

/// <summary>
/// The libc calls behind the file handling of <see cref="Acquisition.ProcFs.ProcRoot"/>,
/// <see cref="Credentials"/> and the <c>--output</c> writer: descriptors, not paths, so that what
/// was checked is what is read or written. Flags and numbers from include/uapi/asm-generic/fcntl.h,
/// stat.h and the syscall tables of x86_64 and arm64 (the two targets of the binary).
/// </summary>
public static unsafe partial class Libc
{
    public const int ORdonly = 0;
    public const int ORdwr = 2;
    public const int OWronly = 1;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ONoctty = 0x100;
    public const int ONonblock = 0x800;
    public const int OCloexec = 0x80000;
    public const int OPath = 0x200000;

    // O_DIRECTORY and O_NOFOLLOW differ between x86_64 (asm-generic) and arm64 (arch/arm64 fcntl.h).
    public static readonly int ODirectory = IsArm64 ? 0x4000 : 0x10000;
    public static readonly int ONofollow = IsArm64 ? 0x8000 : 0x20000;

    public const int AtFdcwd = -100;
    public const int AtSymlinkNofollow = 0x100;
    public const int AtEmptyPath = 0x1000;

    public const int SIfmt = 0xF000;
    public const int SIfreg = 0x8000;
    public const int SIfdir = 0x4000;
    public const int SIflnk = 0xA000;
    public const int SIfifo = 0x1000;
    public const int SIfchr = 0x2000;
    public const int SIfblk = 0x6000;
    public const int SIfsock = 0xC000;

    public const long ProcSuperMagic = 0x9fa0;
    public const long NsfsMagic = 0x6e736673;

    /// <summary>openat2(2) resolve flags (include/uapi/linux/openat2.h).</summary>
    public const ulong ResolveNoMagiclinks = 0x02;
    public const ulong ResolveBeneath = 0x08;

    private static bool IsArm64 => RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

    /// <summary>syscall numbers: x86_64 (arch/x86/entry/syscalls/syscall_64.tbl) or arm64 (include/uapi/asm-generic/unistd.h).</summary>
    public static long SysOpenat2 => 437;

    /// <summary>getdents64: glibc has a wrapper only since 2.30, above the binary's floor (2.17).</summary>
    public static long SysGetdents64 => IsArm64 ? 61 : 217;

    public static long SysSetgroups => IsArm64 ? 159 : 116;

    public static long SysSetfsuid => IsArm64 ? 151 : 122;

    public static long SysSetfsgid => IsArm64 ? 152 : 123;

    public static long SysCapget => IsArm64 ? 90 : 125;

    public static long SysCapset => IsArm64 ? 91 : 126;

    public static long SysExitGroup => IsArm64 ? 94 : 231;

    public static long SysGetrandom => IsArm64 ? 278 : 318;

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>strerror(3) text of <paramref name="errno"/>.</summary>
    public static string Strerror(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>The fields of struct stat this code reads (x86_64 and arm64 layouts differ).</summary>
    public readonly record struct FileStatus(ulong Device, ulong Inode, uint Mode, uint Uid, long Size)
    {
        public uint Type => Mode & SIfmt;

        public bool IsRegular => Type == SIfreg;

        public bool IsDirectory => Type == SIfdir;

        /// <summary>What the file is, for a message (a FIFO where a /proc file should be).</summary>
        public string Kind => Type switch
        {
            SIfreg => "a regular file",
            SIfdir => "a directory",
            SIflnk => "a symbolic link",
            SIfifo => "a FIFO",
            SIfchr => "a character device",
            SIfblk => "a block device",
            SIfsock => "a socket",
            _ => "an unknown kind of file",
        };
    }

    public static bool TryFstat(int fd, out FileStatus status) => TryStat(fd, string.Empty, AtEmptyPath, out status);

    /// <summary>fstatat(2); <paramref name="flags"/> AT_SYMLINK_NOFOLLOW to look at a link itself.</summary>
    public static bool TryStat(int dirfd, string path, int flags, out FileStatus status)
    {
        var buffer = stackalloc byte[256];
        if (fstatat(dirfd, path, buffer, flags) != 0)
        {
            status = default;
            return false;
        }

        status = StatusFrom(buffer);
        return true;
    }

    private static FileStatus StatusFrom(byte* buffer)
    {
        // x86_64: dev 0, ino 8, nlink 16 (8 bytes), mode 24, uid 28, size 48.
        // arm64 (asm-generic stat): dev 0, ino 8, mode 16, nlink 20 (4 bytes), uid 24, size 48.
        var span = new ReadOnlySpan<byte>(buffer, 256);
        var mode = IsArm64 ? BitConverter.ToUInt32(span[16..]) : BitConverter.ToUInt32(span[24..]);
        var uid = IsArm64 ? BitConverter.ToUInt32(span[24..]) : BitConverter.ToUInt32(span[28..]);
        return new FileStatus(BitConverter.ToUInt64(span), BitConverter.ToUInt64(span[8..]), mode, uid, BitConverter.ToInt64(span[48..]));
    }

    /// <summary>The f_type of the file system <paramref name="fd"/> lives on; null on failure.</summary>
    public static long? FileSystemType(int fd)
    {
        var buffer = stackalloc byte[128];
        return fstatfs(fd, buffer) == 0 ? *(long*)buffer : null;
    }

    /// <summary>The f_type of the file system <paramref name="path"/> lives on (statfs(2) opens nothing).</summary>
    public static long? FileSystemType(string path, out int errno)
    {
        var buffer = stackalloc byte[128];
        if (statfs(path, buffer) != 0)
        {
            errno = LastError;
            return null;
        }

        errno = 0;
        return *(long*)buffer;
    }

    /// <summary>openat2(2); -1 with errno (ENOSYS before Linux 5.6).</summary>
    public static int Openat2(int dirfd, string path, ulong flags, ulong resolve)
    {
        var how = new OpenHow { Flags = flags, Mode = 0, Resolve = resolve };
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return (int)syscall(SysOpenat2, dirfd, (nint)p, (nint)(&how), sizeof(OpenHow));
        }
    }

    /// <summary>Reads up to <paramref name="buffer"/>'s length, retrying on EINTR; -1 with errno.</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            while (true)
            {
                var n = read(fd, b, buffer.Length);
                if (n >= 0 || LastError != Errno.Eintr)
                {
                    return (int)n;
                }
            }
        }
    }

    /// <summary>Writes all of <paramref name="data"/>; false with errno.</summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* b = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = write(fd, b + done, data.Length - done);
                if (n < 0)
                {
                    if (LastError == Errno.Eintr)
                    {
                        continue;
                    }

                    return false;
                }

                done += (int)n;
            }
        }

        return true;
    }

    /// <summary>readlinkat(2) of a link below <paramref name="dirfd"/>; null when it is none or is gone.</summary>
    public static string? ReadLink(int dirfd, string name)
    {
        var buffer = stackalloc byte[256];
        var n = readlinkat(dirfd, name, buffer, 256);
        return n is < 0 or >= 256 ? null : System.Text.Encoding.UTF8.GetString(buffer, (int)n);
    }

    /// <summary>The names in a directory opened for reading (getdents64), without "." and "..".</summary>
    public static List<string> ListDirectory(int fd) => [.. ListDirectoryRaw(fd).Select(n => System.Text.Encoding.UTF8.GetString(n))];

    /// <summary>The names in a directory as the kernel has them: bytes, which need not be UTF-8.</summary>
    public static List<byte[]> ListDirectoryRaw(int fd)
    {
        var names = new List<byte[]>();
        var buffer = new byte[32 * 1024];
        fixed (byte* b = buffer)
        {
            while (true)
            {
                var n = (nint)syscall(SysGetdents64, fd, (nint)b, buffer.Length, 0);
                if (n <= 0)
                {
                    return names;
                }

                // struct linux_dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name NUL-terminated.
                for (var offset = 0; offset < n;)
                {
                    var reclen = *(ushort*)(b + offset + 16);
                    var name = new ReadOnlySpan<byte>(b + offset + 19, reclen - 19);
                    var end = name.IndexOf((byte)0);
                    name = end >= 0 ? name[..end] : name;
                    if (!(name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)))
                    {
                        names.Add(name.ToArray());
                    }

                    offset += reclen == 0 ? (int)n : reclen;
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "openat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Openat(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(int fd, int mode);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "renameat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport("libc", EntryPoint = "unlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "getuid")]
    public static partial uint Getuid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint Geteuid();

    [LibraryImport("libc", EntryPoint = "getgid")]
    public static partial uint Getgid();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint Getegid();

    [LibraryImport("libc", EntryPoint = "getgroups", SetLastError = true)]
    public static partial int Getgroups(int size, uint* list);

    [LibraryImport("libc", EntryPoint = "getgrouplist", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Getgrouplist(string user, uint group, uint* groups, int* count);

    [LibraryImport("libc", EntryPoint = "getpwuid_r", SetLastError = true)]
    public static partial int GetpwuidR(uint uid, byte* pwd, byte* buffer, nuint size, byte** result);

    /// <summary>syscall(2) itself: setgroups, setfsuid and capset through libc's wrappers are
    /// broadcast to every thread (glibc's setxid) or absent; the raw calls change the calling thread only.</summary>
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall(long number, nint a, nint b, nint c, nint d);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int fstatat(int dirfd, string path, byte* buffer, int flags);

    // The same calls for names given as bytes (a file name need not be UTF-8): each name ends in NUL.
    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int openat_raw(int dirfd, byte* path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fstatat", SetLastError = true)]
    private static partial int fstatat_raw(int dirfd, byte* path, byte* buffer, int flags);

    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true)]
    private static partial int renameat_raw(int olddirfd, byte* oldpath, int newdirfd, byte* newpath);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int unlinkat_raw(int dirfd, byte* path, int flags);

    private static byte[] Terminated(ReadOnlySpan<byte> name)
    {
        var z = new byte[name.Length + 1];
        name.CopyTo(z);
        return z;
    }

    public static int Openat(int dirfd, ReadOnlySpan<byte> path, int flags, int mode)
    {
        fixed (byte* p = Terminated(path))
        {
            return openat_raw(dirfd, p, flags, mode);
        }
    }

    public static int Renameat(int olddirfd, ReadOnlySpan<byte> oldpath, int newdirfd, ReadOnlySpan<byte> newpath)
    {
        fixed (byte* o = Terminated(oldpath))
        fixed (byte* n = Terminated(newpath))
        {
            return renameat_raw(olddirfd, o, newdirfd, n);
        }
    }

    public static int Unlinkat(int dirfd, ReadOnlySpan<byte> path, int flags)
    {
        fixed (byte* p = Terminated(path))
        {
            return unlinkat_raw(dirfd, p, flags);
        }
    }

    /// <summary>fstatat(2) of a name given as bytes.</summary>
    public static bool TryStat(int dirfd, ReadOnlySpan<byte> path, int flags, out FileStatus status)
    {
        var buffer = stackalloc byte[256];
        int result;
        fixed (byte* p = Terminated(path))
        {
            result = fstatat_raw(dirfd, p, buffer, flags);
        }

        status = result == 0 ? StatusFrom(buffer) : default;
        return result == 0;
    }

    /// <summary>
    /// The name of interface <paramref name="index"/> in the calling thread's network namespace
    /// (if_indextoname(3) asks through a socket, made in the thread's namespace); "if" and the index
    /// when it is gone.
    /// </summary>
    public static string InterfaceName(int index)
    {
        var buffer = stackalloc byte[32];
        return if_indextoname((uint)index, buffer) is not null
            ? EphemeralPorts.Acquisition.ProcFs.Excerpt.Escape(new ReadOnlySpan<byte>(buffer, new ReadOnlySpan<byte>(buffer, 32).IndexOf((byte)0) is var n and >= 0 ? n : 16))
            : $"if{index}";
    }

    [LibraryImport("libc", EntryPoint = "if_indextoname", SetLastError = true)]
    private static partial byte* if_indextoname(uint index, byte* name);

    /// <summary>getrandom(2), without the crypto library .NET's RandomNumberGenerator loads (libssl); false where the kernel has none (before 3.17).</summary>
    public static bool TryGetRandom(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return syscall(SysGetrandom, (nint)p, buffer.Length, 0, 0) == buffer.Length;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstatfs(int fd, byte* buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statfs(string path, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint readlinkat(int dirfd, string path, byte* buffer, nint size);

}
