using System.Text;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// The /proc tree the check reads: the host's <c>/proc</c>, a host /proc mounted into a container,
/// or a fixture directory. The only code that opens files; every failure becomes a
/// <see cref="CheckException"/> that names the file.
/// </summary>
public sealed class ProcRoot
{
    /// <summary>Sysctl files are one short line; anything larger is not a sysctl.</summary>
    public const int MaxSmallFileBytes = 64 * 1024;

    private const int SmallFileFirstRead = 1024;

    public ProcRoot(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new CheckException("--proc-root: empty path");
        }

        if (!Directory.Exists(path))
        {
            throw new CheckException(File.Exists(path) ? $"--proc-root {path}: not a directory" : $"--proc-root {path}: no such directory");
        }

        Path = path;
    }

    public string Path { get; }

    /// <summary>Where a relative name lives, as shown in messages.</summary>
    public string Describe(string relative) => System.IO.Path.Join(Path, relative);

    /// <summary>Reads a small text file; null when it is optional and absent.</summary>
    public string? ReadSmallFile(string relative, bool optional)
    {
        using var stream = Open(relative, optional);
        if (stream is null)
        {
            return null;
        }

        // Sysctl files are a line: start small and grow only for a file that keeps going, up to
        // one byte past the limit (so that "larger than" can be told).
        var buffer = new byte[SmallFileFirstRead];
        var total = 0;
        try
        {
            int read;
            while ((read = stream.Read(buffer, total, buffer.Length - total)) > 0)
            {
                total += read;
                if (total == buffer.Length)
                {
                    if (buffer.Length > MaxSmallFileBytes)
                    {
                        break;
                    }

                    Array.Resize(ref buffer, Math.Min(buffer.Length * 4, MaxSmallFileBytes + 1));
                }
            }
        }
        catch (IOException e)
        {
            throw new CheckException($"{Describe(relative)}: read error: {e.Message}", e);
        }

        if (total > MaxSmallFileBytes)
        {
            throw new CheckException($"{Describe(relative)}: larger than {MaxSmallFileBytes} bytes, not a sysctl file");
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
        var stream = Open(relative, optional);
        return stream is null ? null : new ProcLineReader(stream, Describe(relative));
    }

    private FileStream? Open(string relative, bool optional)
    {
        var path = Describe(relative);
        try
        {
            // /proc files report a length of 0: read them unbuffered, in our own chunks.
            return new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite, BufferSize = 0 });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return optional ? null : throw new CheckException($"{path}: no such file", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CheckException(Directory.Exists(path) ? $"{path}: is a directory" : $"{path}: permission denied", e);
        }
        catch (IOException e)
        {
            throw new CheckException($"{path}: cannot open: {e.Message}", e);
        }
    }
}
