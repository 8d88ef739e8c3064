namespace EphemeralPorts.Native;

/// <summary>The errno values the plugin acts on (asm-generic/errno-base.h, errno.h), with words for operators.</summary>
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
        Enoent => "ENOENT (no such file or not supported)",
        Eacces => "EACCES (permission denied)",
        Einval => "EINVAL (invalid request)",
        EprotoNoSupport => "EPROTONOSUPPORT (no sock_diag in this kernel)",
        EafNoSupport => "EAFNOSUPPORT (no netlink here)",
        _ => $"errno {errno}",
    };
}
