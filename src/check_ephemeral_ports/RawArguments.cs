using System.Text;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>
/// The bytes of a command-line argument as the kernel passed them. The runtime decodes argv as
/// UTF-8 and puts U+FFFD for a byte that is not: a file name with such a byte would be a
/// different name. Where an argument holds U+FFFD, its bytes are read back from
/// /proc/self/cmdline.
/// </summary>
internal static class RawArguments
{
    public static byte[] BytesOf(string argument, string option)
    {
        if (!argument.Contains('\uFFFD', StringComparison.Ordinal))
        {
            return Encoding.UTF8.GetBytes(argument);
        }

        byte[]? cmdline = null;
        var fd = Libc.Openat(Libc.AtFdcwd, "/proc/self/cmdline", Libc.ORdonly | Libc.OCloexec, 0);
        if (fd >= 0)
        {
            try
            {
                var buffer = new byte[256 * 1024];
                var total = 0;
                int read;
                while (total < buffer.Length && (read = Libc.Read(fd, buffer.AsSpan(total))) > 0)
                {
                    total += read;
                }

                cmdline = buffer[..total];
            }
            finally
            {
                Libc.Close(fd);
            }
        }

        foreach (var raw in Split(cmdline ?? []).Skip(1))
        {
            if (Encoding.UTF8.GetString(raw) == argument)
            {
                return raw;
            }
        }

        throw new CheckException($"{option} {argument}: the name is not UTF-8 and its bytes could not be read back from /proc/self/cmdline");
    }

    private static IEnumerable<byte[]> Split(byte[] cmdline)
    {
        var start = 0;
        for (var i = 0; i < cmdline.Length; i++)
        {
            if (cmdline[i] == 0)
            {
                yield return cmdline[start..i];
                start = i + 1;
            }
        }
    }
}
