namespace EphemeralPorts.Native;

/// <summary>The errno values the plugin acts on (asm-generic/errno-base.h, errno.h), with the kernel's own words: what
/// was refused, never a guess at why (qemu-user refuses NETLINK_SOCK_DIAG on a kernel that has it).</summary>
public static class Errno
{
    public const int Eperm = 1;
    public const int Enoent = 2;
    public const int Eintr = 4;
    public const int Eacces = 13;
    public const int Einval = 22;
    public const int EprotoNoSupport = 93;
    public const int EafNoSupport = 97;

    public static string Describe(int errno) => errno switch
    {
        Eperm => "EPERM (operation not permitted)",
        Enoent => "ENOENT (no such file or directory)",
        Eacces => "EACCES (permission denied)",
        Einval => "EINVAL (invalid request)",
        EprotoNoSupport => "EPROTONOSUPPORT (protocol not supported)",
        EafNoSupport => "EAFNOSUPPORT (address family not supported)",
        _ => $"errno {errno}",
    };
}
