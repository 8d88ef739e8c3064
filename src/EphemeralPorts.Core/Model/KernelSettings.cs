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
    /// Whether <c>connect()</c> would take over this TIME_WAIT tuple (<c>tcp_twsk_unique()</c>):
    /// timestamps on, reuse 1 (or 2 on loopback), and older than the reuse delay. Whether the
    /// connection really negotiated timestamps cannot be seen from outside; the sysctl stands in.
    /// </summary>
    public bool IsReusableTimeWait(in SocketEntry entry)
    {
        if (Timestamps == 0 || entry.TimeWaitRemainingMs < 0)
        {
            return false;
        }

        var allowed = TwReuse == 1
            || (TwReuse == 2 && (entry.LocalAddress.IsLoopback || entry.RemoteAddress.IsLoopback));
        var ageMs = TimeWaitLengthMs - entry.TimeWaitRemainingMs;
        return allowed && ageMs > TwReuseDelayMs;
    }
}
