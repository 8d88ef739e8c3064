using System.Globalization;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// One key of source NAT (nf_nat's unit of exhaustion: NAT address, destination, destination
/// port, protocol, zone) and what its entries hold of the range in force.
/// </summary>
/// <param name="Key">The key, as the REPLY tuple names it.</param>
/// <param name="Entries">Its conntrack entries, source-NATed or not (the router's own connections share the key).</param>
/// <param name="Held">Ports of <paramref name="Range"/> held by an entry of the key.</param>
/// <param name="Soft">Of those, ports held only by TCP TIME_WAIT/CLOSE entries with SRC_NAT (6.5+ kernels may evict them).</param>
/// <param name="Range">The source-port range the key's flows are given.</param>
/// <param name="RangeSource">Where <paramref name="Range"/> comes from, for -v.</param>
/// <param name="FailureOdds">The share of new flows needing a port that find none, as this kernel counts soft ports (0..1).</param>
public sealed record NatKeyUsage(NatKey Key, int Entries, int Held, int Soft, NatPortRange Range, string RangeSource, double FailureOdds)
{
    /// <summary>Held ports over the range: the fill.</summary>
    public double Percent => Numbers.Percent(Held, Range.Size);

    /// <summary>The failure odds in percent.</summary>
    public double FailurePercent => Math.Round(FailureOdds * 100, 2);

    /// <summary>Whether <see cref="Range"/> is the one in force (given, or read from the rules); false where it is the best guess.</summary>
    public bool RangeKnown { get; init; } = true;

    /// <summary>Every port of the range is held: the next flow needing one is dropped.</summary>
    public bool FailsNow => Held >= Range.Size || FailureOdds >= 1;

    /// <summary>As conntrack(8) and the operator write it: NAT address -> destination:port/protocol, and the zone where it is not 0.</summary>
    public override string ToString()
    {
        var destination = Key.Destination.IsV4Mapped ? Key.Destination.ToString() : $"[{Key.Destination}]";
        var zone = Key.Zone == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $" zone {Key.Zone}");
        return string.Create(CultureInfo.InvariantCulture, $"{Key.NatAddress} -> {destination}:{Key.DestinationPort}/{ProtocolName(Key.Protocol)}{zone}");
    }

    public static string ProtocolName(byte protocol) => protocol switch
    {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => protocol.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>The conntrack table of one namespace: its entries against the global maximum, and the counters of damage done.</summary>
/// <param name="Count">nf_conntrack_count: this namespace's entries.</param>
/// <param name="Max">nf_conntrack_max: the one limit of every namespace (0: none).</param>
/// <param name="Statistics">The per-CPU counters summed, or null where they could not be read.</param>
/// <param name="StatisticsSource">Where the counters were read, for -v.</param>
public sealed record ConntrackTable(long Count, long Max, ConntrackStatistics? Statistics, string StatisticsSource)
{
    /// <summary>The most a table that is not full reads: see <see cref="Percent"/>.</summary>
    public const double AlmostFull = 99.99;

    /// <summary>
    /// Entries over the max in percent, 100 only when the table is full: __nf_conntrack_alloc()
    /// refuses the entry that would pass the max, and until then one more fits. Shown with two
    /// decimals, the last 0.01% of a large table (26 entries of 262,144) would read "100%".
    /// </summary>
    public double Percent => Max <= 0 ? 0 : Count >= Max ? 100 : Math.Min(Numbers.Percent(Count, Max), AlmostFull);

    /// <summary>
    /// The next entry passes the max: the kernel drops its packet unless early_drop() finds an
    /// entry that is not ASSURED to evict (proven with a namespace filled to the max:
    /// tests/oracle/conntrack_fill.py, docs/nat-model.md).
    /// </summary>
    public bool Full => Max > 0 && Count >= Max;

    /// <summary>Entries not yet ASSURED, which early_drop() may evict for a new flow; null where the dump was not read.</summary>
    public long? Unassured { get; init; }
}

/// <summary>
/// What the conntrack resource read of one namespace: the table (null where the namespace tracks
/// no connections: nf_conntrack is not loaded there), the NAT keys worst first (null where they
/// were not read, with the reason), and whether 6.5+ eviction of soft ports was counted.
/// </summary>
public sealed record NatReading(ConntrackTable? Table, IReadOnlyList<NatKeyUsage>? Keys, string? KeysNotRead, bool SoftEvictable)
{
    /// <summary>The namespace tracks no connections: nothing of NAT or the table to say.</summary>
    public static readonly NatReading None = new(null, null, null, false);

    public NatKeyUsage? Worst => Keys is { Count: > 0 } keys ? keys[0] : null;

    /// <summary>Keys whose range in force is not known (the rules refused, or a rule's ports unreadable): their figures are a guess.</summary>
    public int UnknownRanges { get; init; }

    /// <summary>
    /// Where the keys were not read: the forwarding sysctl that says this namespace routes other
    /// hosts' packets (<c>net.ipv4.ip_forward = 1</c>), the mark of a router, Docker host or
    /// Kubernetes node, which is where source NAT lives; null where it forwards nothing.
    /// </summary>
    public string? Forwarding { get; init; }

    /// <summary>The operator asked not to read the keys (<c>--ignore-nat</c>).</summary>
    public bool Ignored { get; init; }

    /// <summary>
    /// The keys decide the state but were not read: the namespace tracks connections and forwards
    /// packets, so it may well source-NAT, and an OK would be an OK for something never read.
    /// </summary>
    public bool KeysUnread => Keys is null && KeysNotRead is not null && !Ignored && Forwarding is not null && Table is { Count: > 0 };
}
