using System.Globalization;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>
/// For whom a privileged run acts (<see cref="EphemeralPorts.Acquisition.Host.Invoker"/>): the files named on the
/// command line (<c>--output</c>, <c>--proc-root</c>, <c>--netns PATH</c>) are opened as that user.
/// <list type="bullet">
/// <item>Real and effective ids differ (a setuid or setgid bit), or a non-root process holds
/// capabilities (file capabilities): the real user, with the groups it has. SUDO_* is ignored: that
/// caller set its own environment.</item>
/// <item>Root with SUDO_UID set (sudo sets it, and env_reset keeps the caller from setting it): the
/// user who ran sudo, with SUDO_GID and that user's groups (getgrouplist).</item>
/// <item>Anything else: nobody; the process's own privileges are its caller's.</item>
/// </list>
/// </summary>
public static class Privileges
{
    public static ActingUser? Invoker(Func<string, string?> environment)
    {
        var (ruid, euid, rgid, egid) = (Libc.Getuid(), Libc.Geteuid(), Libc.Getgid(), Libc.Getegid());
        if (ruid != euid || rgid != egid)
        {
            return new ActingUser(ruid, rgid, Credentials.CurrentGroups(), "the real user of a setuid binary");
        }

        if (euid != 0)
        {
            return Credentials.HasCapabilities() ? new ActingUser(ruid, rgid, Credentials.CurrentGroups(), "the user of a binary with capabilities") : null;
        }

        if (environment("SUDO_UID") is not { } uidText)
        {
            return null;
        }

        if (!uint.TryParse(uidText, NumberStyles.None, CultureInfo.InvariantCulture, out var uid) || uid == uint.MaxValue)
        {
            throw new CheckException($"SUDO_UID '{uidText}' is not a user id");
        }

        if (uid == 0)
        {
            return null;
        }

        var gidText = environment("SUDO_GID");
        if (gidText is null || !uint.TryParse(gidText, NumberStyles.None, CultureInfo.InvariantCulture, out var gid) || gid == uint.MaxValue)
        {
            throw new CheckException($"SUDO_GID '{gidText}' is not a group id (SUDO_UID is {uid})");
        }

        return new ActingUser(uid, gid, Credentials.GroupsOf(uid, gid), "who ran sudo");
    }
}
