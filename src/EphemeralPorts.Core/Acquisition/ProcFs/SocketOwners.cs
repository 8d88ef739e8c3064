using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Who holds the ports (<c>--processes</c>): walks /proc/PID/fd of every process and matches the
/// <c>socket:[INODE]</c> links against the inodes of the busiest tuples. It costs a readlink per
/// open file on the host, so it is off by default and runs within the check's timeout. Processes
/// whose fd directory is not readable (other users', without root) are counted, not guessed at.
/// </summary>
public static class SocketOwners
{
    /// <summary>For each set of inodes, the processes holding them, most sockets first.</summary>
    public static (List<List<SocketHolder>> Holders, int Unreadable) Find(
        IReadOnlyList<IReadOnlySet<long>> inodeSets, string procRoot, Action<string>? progress = null)
    {
        progress?.Invoke($"{procRoot}/*/fd (--processes)");
        var wanted = new Dictionary<long, int>();
        for (var set = 0; set < inodeSets.Count; set++)
        {
            foreach (var inode in inodeSets[set])
            {
                wanted.TryAdd(inode, set);
            }
        }

        var counts = new Dictionary<(int Set, int Pid), int>();
        var unreadable = 0;
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || wanted.Count == 0)
            {
                continue;
            }

            IEnumerable<string> fds;
            try
            {
                fds = Directory.EnumerateFileSystemEntries($"{dir}/fd").ToList();
            }
            catch (UnauthorizedAccessException)
            {
                unreadable++;
                continue;
            }
            catch (IOException)
            {
                continue; // the process ended
            }

            foreach (var fd in fds)
            {
                if (Inode(fd) is { } inode && wanted.TryGetValue(inode, out var set))
                {
                    counts[(set, pid)] = counts.GetValueOrDefault((set, pid)) + 1;
                }
            }
        }

        var holders = Enumerable.Range(0, inodeSets.Count)
            .Select(set => counts.Where(c => c.Key.Set == set)
                .Select(c => new SocketHolder(c.Key.Pid, Command(procRoot, c.Key.Pid), c.Value))
                .OrderByDescending(h => h.Sockets).ThenBy(h => h.Pid).ToList())
            .ToList();
        return (holders, unreadable);
    }

    // readlink("/proc/PID/fd/N") is "socket:[12345]" for a socket.
    private static long? Inode(string fdPath)
    {
        string? target;
        try
        {
            target = new FileInfo(fdPath).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']')
            && long.TryParse(target.AsSpan(8, target.Length - 9), out var inode)
            ? inode
            : null;
    }

    /// <summary>The command name of a process (/proc/PID/comm), "?" once it is gone or hidden.</summary>
    public static string Command(string procRoot, int pid)
    {
        try
        {
            return File.ReadAllText($"{procRoot}/{pid}/comm").TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }
}
