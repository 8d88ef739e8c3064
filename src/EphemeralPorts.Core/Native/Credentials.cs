using EphemeralPorts.Plugin;

namespace EphemeralPorts.Native;

/// <summary>
/// The user a privileged run acts for: the one who ran <c>sudo</c> (SUDO_UID, SUDO_GID), or the
/// real uid of a binary made privileged by a setuid bit or file capabilities. Files named on the
/// command line are opened as this user, so the plugin's privileges never reach a file the user
/// could not read or write themselves.
/// </summary>
public sealed record ActingUser(uint Uid, uint Gid, IReadOnlyList<uint> Groups, string Why);

/// <summary>
/// Runs a piece of file work with the credentials of an <see cref="ActingUser"/> (the run's <see cref="Acquisition.Host.Invoker"/>) on the calling thread
/// only. Linux keeps credentials per thread; glibc's setuid()/setgroups() broadcast a change to
/// every thread of the process, the raw system calls do not. The filesystem uid and gid
/// (setfsuid/setfsgid) are what the kernel checks for opening files; the supplementary groups
/// take part too; and every effective capability is dropped for the duration, so that neither
/// CAP_DAC_OVERRIDE (root, file capabilities) nor CAP_SYS_PTRACE (the ptrace check behind
/// /proc/PID/ns) speaks for the user. Afterwards the thread is put back exactly as it was: the
/// permitted set is untouched, so the effective set can be raised again. A thread started inside
/// <see cref="As{T}"/> would inherit these credentials (clone(2) copies them): the work passed in
/// only opens, reads and writes.
/// </summary>
public static unsafe class Credentials
{
    private const uint CapabilityVersion3 = 0x20080522;

    /// <summary>Whether any capability is permitted to this process (root, file capabilities, ambient ones).</summary>
    public static bool HasCapabilities()
    {
        var data = stackalloc uint[6];
        return Capget(data) && (data[1] | data[4]) != 0;
    }

    /// <summary>CAP_SYS_PTRACE: another user's /proc/PID/ns/net and /proc/PID/fd.</summary>
    public const int CapSysPtrace = 19;

    /// <summary>CAP_SYS_ADMIN: setns(2) into a network namespace.</summary>
    public const int CapSysAdmin = 21;

    /// <summary>Whether capability <paramref name="capability"/> (below 32) is in this thread's effective set.</summary>
    public static bool HasEffective(int capability)
    {
        var data = stackalloc uint[6];
        return Capget(data) && (data[0] & (1u << capability)) != 0;
    }

    /// <summary><paramref name="work"/> with <paramref name="user"/>'s filesystem credentials and no capability, on this thread.</summary>
    public static T As<T>(ActingUser user, Func<T> work)
    {
        var saved = stackalloc uint[6];
        if (!Capget(saved))
        {
            throw Refusal(user, "capget", Libc.LastError);
        }

        var groups = CurrentGroups();
        var switchGroups = !groups.Order().SequenceEqual(user.Groups.Order());
        if (switchGroups && !SetGroups(user.Groups))
        {
            throw Refusal(user, "setgroups", Libc.LastError);
        }

        var oldGid = (uint)Libc.syscall(Libc.SysSetfsgid, (nint)user.Gid, 0, 0, 0);
        var oldUid = (uint)Libc.syscall(Libc.SysSetfsuid, (nint)user.Uid, 0, 0, 0);
        try
        {
            // setfsuid() says nothing of a refusal: ask again with an invalid id, which changes nothing.
            if ((uint)Libc.syscall(Libc.SysSetfsuid, -1, 0, 0, 0) != user.Uid || (uint)Libc.syscall(Libc.SysSetfsgid, -1, 0, 0, 0) != user.Gid)
            {
                throw Refusal(user, "setfsuid", Errno.Eperm);
            }

            var none = stackalloc uint[6];
            for (var i = 0; i < 6; i++)
            {
                none[i] = saved[i];
            }

            none[0] = 0;
            none[3] = 0;
            if (!Capset(none))
            {
                throw Refusal(user, "capset", Libc.LastError);
            }

            return work();
        }
        finally
        {
            var restored = Capset(saved);
            Libc.syscall(Libc.SysSetfsuid, (nint)oldUid, 0, 0, 0);
            Libc.syscall(Libc.SysSetfsgid, (nint)oldGid, 0, 0, 0);
            restored &= !switchGroups || SetGroups(groups);
            if (!restored)
            {
                // This thread would go on with the wrong credentials: nothing it does afterwards can be trusted.
                throw new InvalidOperationException($"could not restore this thread's credentials after acting as uid {user.Uid}");
            }
        }
    }

    /// <summary>The supplementary groups of the calling thread.</summary>
    public static uint[] CurrentGroups()
    {
        var count = Libc.Getgroups(0, null);
        var groups = new uint[Math.Max(count, 0)];
        fixed (uint* g = groups)
        {
            count = Libc.Getgroups(groups.Length, g);
        }

        return count < 0 ? [] : groups[..count];
    }

    /// <summary>The groups of user <paramref name="uid"/> as login would give them; only <paramref name="gid"/> for a user without a name.</summary>
    public static uint[] GroupsOf(uint uid, uint gid)
    {
        if (UserName(uid) is not { } name)
        {
            return [gid];
        }

        var count = 64;
        while (true)
        {
            var groups = new uint[count];
            int n = count;
            fixed (uint* g = groups)
            {
                if (Libc.Getgrouplist(name, gid, g, &n) >= 0)
                {
                    return groups[..n];
                }
            }

            if (n <= count || count > 65536)
            {
                return [gid];
            }

            count = n;
        }
    }

    private static string? UserName(uint uid)
    {
        // struct passwd: pw_name is its first field.
        var passwd = stackalloc byte[64];
        var buffer = new byte[16 * 1024];
        byte* result = null;
        fixed (byte* b = buffer)
        {
            return Libc.GetpwuidR(uid, passwd, b, (nuint)buffer.Length, &result) == 0 && result != null
                ? System.Runtime.InteropServices.Marshal.PtrToStringUTF8(*(nint*)passwd)
                : null;
        }
    }

    private static bool SetGroups(IReadOnlyList<uint> groups)
    {
        var list = groups.ToArray();
        fixed (uint* g = list)
        {
            return Libc.syscall(Libc.SysSetgroups, list.Length, (nint)g, 0, 0) == 0;
        }
    }

    // struct __user_cap_header_struct { u32 version; int pid; } and two __user_cap_data_struct
    // { effective, permitted, inheritable }: the low and the high 32 capabilities. pid 0 is this thread.
    private static bool Capget(uint* data)
    {
        var header = stackalloc uint[2];
        header[0] = CapabilityVersion3;
        header[1] = 0;
        return Libc.syscall(Libc.SysCapget, (nint)header, (nint)data, 0, 0) == 0;
    }

    private static bool Capset(uint* data)
    {
        var header = stackalloc uint[2];
        header[0] = CapabilityVersion3;
        header[1] = 0;
        return Libc.syscall(Libc.SysCapset, (nint)header, (nint)data, 0, 0) == 0;
    }

    private static CheckException Refusal(ActingUser user, string call, int errno) =>
        new($"cannot act as the invoking user (uid {user.Uid}, {user.Why}): {call}: {Errno.Describe(errno)}");
}
