using System.Globalization;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// A namespace's own socket counters, from <c>/proc/net/sockstat</c> and <c>sockstat6</c>
/// (sockstat_seq_show() and sockstat6_seq_show() in net/ipv4/proc.c and net/ipv6/proc.c), read
/// from inside the namespace. Null where a line is missing or not a number.
/// </summary>
/// <param name="SocketsUsed"><c>sockets: used</c>: every socket made in this namespace and not yet freed,
/// of any family, bound-but-idle ones included (sock_inuse_get(net); host-wide before Linux 4.16).</param>
/// <param name="TcpInUse"><c>TCP: inuse</c>: IPv4 TCP sockets in the listening and connection hashes (not bound-but-idle ones).</param>
/// <param name="TcpTimeWait"><c>TCP: tw</c>: TIME_WAIT sockets of both families (not counted in <c>sockets: used</c>).</param>
/// <param name="UdpInUse"><c>UDP: inuse</c>: IPv4 UDP sockets that hold a port.</param>
/// <param name="Tcp6InUse"><c>TCP6: inuse</c>; null when there is no sockstat6 (IPv6 disabled).</param>
/// <param name="Udp6InUse"><c>UDP6: inuse</c>: IPv6 UDP sockets that hold a port (dual-stack ones too).</param>
/// <param name="OtherInUse">The other protocols' <c>inuse</c> of both files (UDPLITE, RAW and their IPv6 kin); null when one is missing.</param>
public sealed record Sockstat(long? SocketsUsed, long? TcpInUse, long? TcpTimeWait, long? UdpInUse, long? Tcp6InUse, long? Udp6InUse, bool HasIpv6, long? OtherInUse = 0)
{
    /// <summary>
    /// Nothing in this namespace can hold a port: no socket of any kind was made in it (or all
    /// are freed) and no TIME_WAIT is left. Proven by KernelOracle/NamespaceScaleTests: a
    /// bound-but-idle socket counts in <c>sockets: used</c>, a TIME_WAIT in <c>tw</c>.
    /// </summary>
    public bool ProvesEmpty => SocketsUsed == 0 && TcpTimeWait == 0;

    /// <summary>TCP inuse + tw (+ TCP6 inuse): how many TCP sockets a dump reports at most; null when a figure is missing.</summary>
    public long? TcpSockets => TcpInUse is { } inuse && TcpTimeWait is { } timeWait && (!HasIpv6 || Tcp6InUse is not null)
        ? SockstatParser.Sum([inuse, timeWait, Tcp6InUse ?? 0])
        : null;

    /// <summary>
    /// No TCP socket can be bound but idle: every socket made in the namespace is one of those
    /// the protocol lines count as hashed (<c>sockets: used</c> is no more than their sum), so
    /// none is bound without listening or connecting, nor is any other kind of socket there.
    /// </summary>
    public bool ProvesNoBoundInactiveTcp =>
        SocketsUsed is { } used && TcpInUse is { } tcp && UdpInUse is { } udp && OtherInUse is { } other
        && (!HasIpv6 || (Tcp6InUse is not null && Udp6InUse is not null))
        && SockstatParser.Sum([tcp, udp, other, Tcp6InUse ?? 0, Udp6InUse ?? 0]) is { } hashed && used <= hashed;

    /// <summary>No UDP socket of that family holds a port, so its sock_diag dump would report none.</summary>
    public bool ProvesNoUdp(bool ipv6) => ipv6 ? !HasIpv6 || Udp6InUse == 0 : UdpInUse == 0;
}

/// <summary>
/// Parses <c>/proc/net/sockstat</c> and <c>sockstat6</c>. The figures are hints (how to split a
/// dump, which walks cannot find anything), never part of the answer; <c>alloc</c> and
/// <c>orphan</c> are the whole host's and are left aside.
/// </summary>
public static class SockstatParser
{
    public static Sockstat Parse(string sockstat, string? sockstat6) => new(
        Field(sockstat, "sockets:", "used"),
        Field(sockstat, "TCP:", "inuse"),
        Field(sockstat, "TCP:", "tw"),
        Field(sockstat, "UDP:", "inuse"),
        sockstat6 is null ? null : Field(sockstat6, "TCP6:", "inuse"),
        sockstat6 is null ? null : Field(sockstat6, "UDP6:", "inuse"),
        sockstat6 is not null,
        Sum([Field(sockstat, "UDPLITE:", "inuse"), Field(sockstat, "RAW:", "inuse"),
            .. (sockstat6 is null ? Array.Empty<long?>() : [Field(sockstat6, "UDPLITE6:", "inuse"), Field(sockstat6, "RAW6:", "inuse")])]));

    /// <summary>The sum, or null where a figure is missing or the sum would wrap: no namespace holds 2^63 sockets (afl-fuzz found the wrap).</summary>
    internal static long? Sum(long?[] figures)
    {
        long sum = 0;
        foreach (var figure in figures)
        {
            if (figure is not { } value || value > long.MaxValue - sum)
            {
                return null;
            }

            sum += value;
        }

        return sum;
    }

    /// <summary>
    /// How many TCP sockets a sock_diag dump of the namespace reports at most: TCP inuse + tw of
    /// <paramref name="sockstat"/> and TCP6 inuse of <paramref name="sockstat6"/> (absent when IPv6
    /// is disabled); null when a figure is missing or not a number.
    /// </summary>
    public static long? TcpSockets(string sockstat, string? sockstat6) => Parse(sockstat, sockstat6).TcpSockets;

    // The value after `name` on the line that starts with `prefix` ("TCP: inuse 1 orphan 0 tw 35 ...").
    private static long? Field(string text, string prefix, string name)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(prefix + " ", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line[(prefix.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 0; i + 1 < fields.Length; i += 2)
            {
                if (fields[i] == name)
                {
                    return long.TryParse(fields[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
                }
            }

            return null;
        }

        return null;
    }
}
