namespace EphemeralPorts.Native;

/// <summary>The errno values the plugin acts on (asm-generic/errno-base.h, errno.h), with the kernel's own words: what
/// was refused, never a guess at why (qemu-user refuses NETLINK_SOCK_DIAG on a kernel that has it).</summary>
public static class Errno
{
    public const int Eperm = 1;
    public const int Enoent = 2;
    public const int Eintr = 4;
    public const int E2big = 7;
    public const int Eagain = 11;
    public const int Eacces = 13;
    public const int Eexist = 17;
    public const int Exdev = 18;
    public const int Enotdir = 20;
    public const int Eisdir = 21;
    public const int Einval = 22;
    public const int Enosys = 38;
    public const int Eloop = 40;
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
        _ => $"{System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})",
    };
}
