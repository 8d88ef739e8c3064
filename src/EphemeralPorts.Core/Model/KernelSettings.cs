namespace EphemeralPorts.Model;

/// <summary>
/// The per-namespace sysctls that decide how many ports a tuple can use.
/// <see cref="TwReuseDelayMs"/> defaults to 1000 ms, the kernel's fixed delay before
/// <c>net.ipv4.tcp_tw_reuse_delay</c> existed.
/// </summary>
public sealed record KernelSettings(
    PortRange Range,
    PortSet Reserved,
    int TwReuse,
    int TwReuseDelayMs,
    bool TwReuseDelayFromSysctl,
    int Timestamps,
    int FinTimeoutSeconds)
{
    public const int DefaultTwReuseDelayMs = 1000;

    /// <summary>TCP_TIMEWAIT_LEN in include/net/tcp.h: TIME_WAIT lasts 60 s.</summary>
    public const long TimeWaitLengthMs = 60_000;

    /// <summary>
    /// Whether <c>connect()</c> would take over this TIME_WAIT tuple (<c>tcp_twsk_unique()</c>): the
    /// old connection negotiated timestamps, reuse is 1 (or 2 on loopback), and it is older than
    /// the reuse delay. Where the socket's own timestamps and age are not seen (/proc, sock_diag),
    /// the <c>tcp_timestamps</c> sysctl stands in and the age follows from the timer's time left.
    /// </summary>
    public bool IsReusableTimeWait(in SocketEntry entry)
    {
        var timestamps = entry.NegotiatedTimestamps ?? Timestamps != 0;
        var ageMs = entry.TimeWaitAgeMs >= 0 ? entry.TimeWaitAgeMs
            : entry.TimeWaitRemainingMs >= 0 ? TimeWaitLengthMs - entry.TimeWaitRemainingMs
            : -1;
        if (!timestamps || ageMs < 0)
        {
            return false;
        }

        var allowed = TwReuse == 1
            || (TwReuse == 2 && (entry.LocalAddress.IsLoopback || entry.RemoteAddress.IsLoopback));
        return allowed && ageMs > TwReuseDelayMs;
    }
}
