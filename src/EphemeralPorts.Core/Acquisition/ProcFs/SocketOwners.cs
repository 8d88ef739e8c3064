using System.Globalization;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

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
        IReadOnlyList<IReadOnlySet<long>> inodeSets, Host host, Action<string>? progress = null)
    {
        progress?.Invoke($"{host.ProcRoot}/*/fd (the processes holding the sockets)");
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
        using var root = host.Open();
        foreach (var name in wanted.Count == 0 ? [] : root.ListDirectory(string.Empty, out _) ?? [])
        {
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid < 1)
            {
                continue;
            }

            var links = root.ReadLinks($"{pid}/fd", out var errno);
            if (links is null)
            {
                // A process that ended meanwhile is not counted; one whose fds are hidden is.
                unreadable += errno is Native.Errno.Eacces or Native.Errno.Eperm ? 1 : 0;
                continue;
            }

            foreach (var (_, target) in links)
            {
                if (Inode(target) is { } inode && wanted.TryGetValue(inode, out var set))
                {
                    counts[(set, pid)] = counts.GetValueOrDefault((set, pid)) + 1;
                }
            }
        }

        var holders = Enumerable.Range(0, inodeSets.Count)
            .Select(set => counts.Where(c => c.Key.Set == set)
                .Select(c => new SocketHolder(c.Key.Pid, Command(root, c.Key.Pid), c.Value))
                .OrderByDescending(h => h.Sockets).ThenBy(h => h.Pid).ToList())
            .ToList();
        return (holders, unreadable);
    }

    // readlink("/proc/PID/fd/N") is "socket:[12345]" for a socket.
    private static long? Inode(string? target) =>
        target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']')
            && long.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
            ? inode
            : null;

    /// <summary>The kernel's comm is at most TASK_COMM_LEN - 1 = 15 bytes and a newline; a little slack, no more.</summary>
    public const int MaxCommandBytes = 17;

    /// <summary>The command name of a process (/proc/PID/comm), "?" once it is gone, hidden or not a command name.</summary>
    public static string Command(ProcRoot root, int pid)
    {
        try
        {
            return CommandName(root.ReadSmallFile($"{pid}/comm", optional: true, MaxCommandBytes)) ?? "?";
        }
        catch (CheckException)
        {
            return "?";
        }
    }

    /// <summary>The text of a comm file as a name to print: one line, escaped; null when it is no comm.</summary>
    public static string? CommandName(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var name = text.EndsWith('\n') ? text[..^1] : text;
        return name.Length is 0 or > MaxCommandBytes - 1 || name.Contains('\n', StringComparison.Ordinal) ? null : Excerpt.Escape(name);
    }
}
