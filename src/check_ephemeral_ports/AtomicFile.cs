using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>
/// Writes a file so that a reader (node_exporter's textfile collector) never sees half of it:
/// a temporary file in the same directory, flushed, then renamed over the target.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(text);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }

            File.SetUnixFileMode(temp, (UnixFileMode)0b110_100_100);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            var why = e switch
            {
                DirectoryNotFoundException => $"no such directory {dir}",
                UnauthorizedAccessException => $"permission denied in {dir}",
                _ => e.Message,
            };
            throw new CheckException($"--output {path}: cannot write: {why}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing more to do: the error that matters is reported by the caller.
        }
    }
}
