using EphemeralPorts.Native;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Whether a proc tree hides other users' processes from this one: procfs mounted with
/// <c>hidepid=2</c> (shown as <c>hidepid=invisible</c> since Linux 5.8) leaves out the /proc/PID
/// directories of processes the reader may not ptrace, so a walk of the fds cannot tell "held by no
/// process" from "held by a process you may not see". Members of the mount's <c>gid=</c> group
/// and holders of CAP_SYS_PTRACE see everything (fs/proc/base.c, has_pid_permissions).
/// </summary>
public static class HiddenProcesses
{
    /// <summary>Why processes may be missing from the host's /proc tree, or null when none are hidden.</summary>
    public static string? Why(Host host)
    {
        if (Credentials.HasEffective(Credentials.CapSysPtrace) && host.Invoker is null)
        {
            return null;
        }

        string? mountinfo;
        try
        {
            using var proc = host.OpenKernel();
            mountinfo = proc.ReadSmallFile("self/mountinfo", optional: true, limit: 4 * 1024 * 1024);
        }
        catch (Plugin.CheckException)
        {
            return null;
        }

        var where = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(host.ProcRoot));
        var groups = host.Invoker?.Groups ?? Credentials.CurrentGroups();
        string? found = null;
        foreach (var line in (mountinfo ?? string.Empty).Split('\n'))
        {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || dash < 0 || dash + 3 >= fields.Length || fields[4] != where || fields[dash + 1] != "proc")
            {
                continue;
            }

            // The last mount at a place is the one a path reaches.
            var options = fields[dash + 3].Split(',');
            var hidepid = options.FirstOrDefault(o => o.StartsWith("hidepid=", StringComparison.Ordinal));
            var exempt = options.FirstOrDefault(o => o.StartsWith("gid=", StringComparison.Ordinal)) is { } gid
                && uint.TryParse(gid.AsSpan(4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var g)
                && groups.Contains(g);
            found = hidepid is "hidepid=2" or "hidepid=invisible" && !exempt ? $"{where} is mounted with {hidepid}" : null;
        }

        return found;
    }
}
