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

    /// <summary>LOOPBACK_IFINDEX: lo is interface 1 in every namespace.</summary>
    public const int LoopbackIfIndex = 1;

    /// <summary>
    /// __inet_hash_connect() rounds an odd-sized range down to an even count and scans one parity
    /// from an offset, then the other: one end port of an odd-sized range (low or high, by a
    /// secret per-boot hash of the tuple and a perturbation) is not offered to a tuple whose last
    /// free port it is, so a tuple is guaranteed one port less. An even-sized range (ends of
    /// different parity) loses nothing.
    /// </summary>
    public bool RangeSizeIsOdd => Range.Size > 1 && Range.Size % 2 == 1;

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

        // tcp_twsk_unique(): with 2, a TIME_WAIT bound to lo counts as loopback whatever its addresses.
        var allowed = TwReuse == 1
            || (TwReuse == 2 && (entry.LocalAddress.IsLoopback || entry.RemoteAddress.IsLoopback || entry.BoundDevice == LoopbackIfIndex));
        return allowed && ageMs > TwReuseDelayMs;
    }
}
