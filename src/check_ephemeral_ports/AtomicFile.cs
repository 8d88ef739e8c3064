using System.Security.Cryptography;
using System.Text;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>
/// Writes a file so that a reader (node_exporter's textfile collector) never sees half of it:
/// a temporary file in the same directory, flushed, then renamed over the target.
/// </summary>
/// <remarks>
/// Safe in a directory others can write to, as root: the temporary name carries 128 random bits
/// and is created with O_CREAT | O_EXCL | O_NOFOLLOW relative to a descriptor of the directory, so
/// a file or symbolic link planted at any name fails the create instead of receiving the write;
/// the mode is set on the open descriptor (fchmod), never by path; rename(2) replaces the target's
/// directory entry, never what a link there points to. Under sudo the whole write is done as the
/// invoking user (<see cref="Credentials.AsInvoker"/>): the file is theirs, and a directory they
/// cannot write to refuses the plugin too.
/// </remarks>
public static class AtomicFile
{
    /// <summary>rw-r--r--: node_exporter runs as its own user and must read it.</summary>
    public const int Mode = 0b110_100_100;

    private const int Attempts = 8;

    public static void Write(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var name = Path.GetFileName(full);
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        var failure = Credentials.AsInvoker(() => WriteIn(dir, name, bytes));
        if (failure is { } why)
        {
            throw new CheckException($"--output {path}: cannot write: {why}");
        }
    }

    /// <summary>The name a temporary file gets: hidden, next to the target, unpredictable.</summary>
    public static string TemporaryName(string name) => $".{name}.{RandomNumberGenerator.GetHexString(32, lowercase: true)}.tmp";

    /// <summary>Null once written; else what went wrong, for the message.</summary>
    private static string? WriteIn(string dir, string name, byte[] bytes)
    {
        var dirfd = Libc.Openat(Libc.AtFdcwd, dir, Libc.OPath | Libc.ODirectory | Libc.OCloexec, 0);
        if (dirfd < 0)
        {
            return Libc.LastError switch
            {
                Errno.Enoent or Errno.Enotdir => $"no such directory {dir}",
                Errno.Eacces or Errno.Eperm => $"permission denied in {dir}",
                var e => $"{dir}: {Errno.Describe(e)}",
            };
        }

        try
        {
            string temp;
            int fd;
            var attempt = 0;
            do
            {
                temp = TemporaryName(name);
                fd = Libc.Openat(dirfd, temp, Libc.OWronly | Libc.OCreat | Libc.OExcl | Libc.ONofollow | Libc.OCloexec, 0b110_000_000);
            }
            while (fd < 0 && Libc.LastError == Errno.Eexist && ++attempt < Attempts);

            if (fd < 0)
            {
                return Libc.LastError is Errno.Eacces or Errno.Eperm ? $"permission denied in {dir}" : $"cannot create a temporary file in {dir}: {Errno.Describe(Libc.LastError)}";
            }

            string? error = null;
            if (Libc.Fchmod(fd, Mode) != 0 || !Libc.WriteAll(fd, bytes) || Libc.Fsync(fd) != 0)
            {
                error = Errno.Describe(Libc.LastError);
            }

            Libc.Close(fd);
            if (error is null && Libc.Renameat(dirfd, temp, dirfd, name) != 0)
            {
                error = Libc.LastError switch
                {
                    Errno.Eisdir => $"{name} is a directory",
                    Errno.Eacces or Errno.Eperm => $"permission denied in {dir}",
                    var e => Errno.Describe(e),
                };
            }

            if (error is not null)
            {
                Libc.Unlinkat(dirfd, temp, 0);
            }

            return error;
        }
        finally
        {
            Libc.Close(dirfd);
        }
    }
}
