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
/// invoking user (<see cref="Credentials.As"/>): the file is theirs, and a directory they
/// cannot write to refuses the plugin too.
/// </remarks>
public static class AtomicFile
{
    /// <summary>rw-r--r--: node_exporter runs as its own user and must read it.</summary>
    public const int Mode = 0b110_100_100;

    private const int Attempts = 8;

    public static void Write(string path, string text, ActingUser? invoker = null)
    {
        // The name given is the name written, byte for byte (RawArguments): split into its
        // directory and its last component without decoding anything.
        var raw = RawArguments.BytesOf(path, "--output");
        var slash = Array.LastIndexOf(raw, (byte)'/');
        var dir = slash < 0 ? "."u8.ToArray() : slash == 0 ? "/"u8.ToArray() : raw[..slash];
        var name = raw[(slash + 1)..];
        if (name.Length == 0 || name is [(byte)'.'] || name is [(byte)'.', (byte)'.'])
        {
            throw new CheckException($"--output {path}: names a directory, not a file");
        }

        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        var failure = invoker is { } user ? Credentials.As(user, () => WriteIn(dir, name, bytes)) : WriteIn(dir, name, bytes);
        if (failure is { } why)
        {
            throw new CheckException($"--output {path}: {why}");
        }
    }

    /// <summary>
    /// The name a temporary file gets: hidden, next to the target, unpredictable. The random bits
    /// come from getrandom(2): .NET's cryptographic generator would load libssl, which a minimal
    /// host does not have.
    /// </summary>
    public static byte[] TemporaryName(ReadOnlySpan<byte> name)
    {
        Span<byte> random = stackalloc byte[16];
        if (!Libc.TryGetRandom(random))
        {
            // Before Linux 3.17: O_EXCL still refuses any planted name, the name is only less secret.
            Random.Shared.NextBytes(random);
        }

        return [.. "."u8, .. name, .. Encoding.ASCII.GetBytes("." + Convert.ToHexStringLower(random) + ".tmp")];
    }

    /// <summary>Null once written; else what went wrong, for the message.</summary>
    private static string? WriteIn(byte[] dir, byte[] name, byte[] bytes)
    {
        var shownDir = Encoding.UTF8.GetString(dir);
        var dirfd = Libc.Openat(Libc.AtFdcwd, dir, Libc.OPath | Libc.ODirectory | Libc.OCloexec, 0);
        if (dirfd < 0)
        {
            return Libc.LastError switch
            {
                Errno.Enoent or Errno.Enotdir => $"cannot write: no such directory {shownDir}",
                Errno.Eacces or Errno.Eperm => $"cannot write: permission denied in {shownDir}",
                var e => $"cannot write: {shownDir}: {Errno.Describe(e)}",
            };
        }

        try
        {
            // Only a regular file is replaced: rename(2) would put the output in place of a
            // device (/dev/null as root), a FIFO, a socket or a directory's entry. A symbolic
            // link is replaced itself, never followed; one that leads to anything but a regular
            // file (or nowhere) is refused too, as what was surely meant is that thing.
            if (Libc.TryStat(dirfd, name, Libc.AtSymlinkNofollow, out var existing) && !existing.IsRegular)
            {
                var refused = existing.Type != Libc.SIflnk
                    ? existing.Kind
                    : Libc.TryStat(dirfd, name, 0, out var target) && !target.IsRegular ? $"a symbolic link to {target.Kind}" : null;
                if (refused is not null)
                {
                    return $"refused: it is {refused}; --output replaces only a regular file (or makes a new one)";
                }
            }

            byte[] temp;
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
                return Libc.LastError is Errno.Eacces or Errno.Eperm ? $"cannot write: permission denied in {shownDir}" : $"cannot write: cannot create a temporary file in {shownDir}: {Errno.Describe(Libc.LastError)}";
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
                    Errno.Eisdir => $"{Encoding.UTF8.GetString(name)} is a directory",
                    Errno.Eacces or Errno.Eperm => $"permission denied in {shownDir}",
                    var e => Errno.Describe(e),
                };
            }

            if (error is not null)
            {
                Libc.Unlinkat(dirfd, temp, 0);
            }

            return error is null ? null : $"cannot write: {error}";
        }
        finally
        {
            Libc.Close(dirfd);
        }
    }
}
