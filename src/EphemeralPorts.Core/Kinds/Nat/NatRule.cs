using System.Globalization;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>The address family a source-NAT rule translates (an nft inet table's masquerade: both).</summary>
public enum NatFamily
{
    Any,
    IPv4,
    IPv6,
}

/// <summary>How the rule picks the NAT address: given (<c>snat to</c>, <c>-j SNAT</c>) or the outgoing interface's.</summary>
public enum NatRuleKind
{
    Snat,
    Masquerade,
}

/// <summary>The NF_NAT_RANGE_* flags that change how a port is picked (include/uapi/linux/netfilter/nf_nat.h).</summary>
[Flags]
public enum NatRangeFlags
{
    None = 0,

    /// <summary>NF_NAT_RANGE_PROTO_RANDOM (<c>random</c>, <c>--random</c>): since Linux 5.0 the same as fully random.</summary>
    Random = 1 << 2,

    /// <summary>NF_NAT_RANGE_PERSISTENT: the address is a hash of the client alone.</summary>
    Persistent = 1 << 3,

    /// <summary>NF_NAT_RANGE_PROTO_RANDOM_FULLY (<c>fully-random</c>, <c>--random-fully</c>).</summary>
    FullyRandom = 1 << 4,
}

/// <summary>An inclusive range of NAT addresses, both of one family.</summary>
public readonly record struct NatAddressRange(CtAddress Low, CtAddress High)
{
    public bool Contains(CtAddress address) => address.IsV4Mapped == Low.IsV4Mapped && address.CompareTo(Low) >= 0 && address.CompareTo(High) <= 0;

    /// <summary>
    /// The range of two ends as a rule gives them; null (the rule may apply to any address) when
    /// they are of two families or upside down: which addresses nf_nat would pick is not this
    /// reader's to guess, and "may apply" never makes the capacity too large.
    /// </summary>
    public static NatAddressRange? From(CtAddress low, CtAddress high) =>
        low.IsV4Mapped == high.IsV4Mapped && low.CompareTo(high) <= 0 ? new NatAddressRange(low, high) : null;

    public override string ToString() => Low == High ? Low.ToString() : $"{Low}-{High}";
}

/// <summary>
/// One source-NAT rule in force, as the kernel holds it: what it translates, to which address and
/// port range, with which flags, and what it is known to match. What was not parsed is null and
/// means "may apply" (never "does not apply"): the capacity that follows must not be too large.
/// </summary>
/// <param name="Family">The family it translates; <see cref="NatFamily.Any"/> for an inet table's rule with no family match.</param>
/// <param name="Addresses">The address range given (SNAT with an address); null for masquerade or when none is given.</param>
/// <param name="Ports">The port range given (<c>--to-ports</c>, <c>:lo-hi</c>); null when none is given (the kernel's class default applies).</param>
/// <param name="Protocol">The L4 protocol (IPPROTO_*) the rule matches as far as read (<c>meta l4proto</c>, <c>ip protocol</c>, <c>-p</c>); null: any, or a match not read (a set, a negation).</param>
/// <param name="OutputInterface">The output interface matched (<c>oifname</c>, <c>-o</c>): a name, <c>eth*</c> for a prefix, <c>!eth0</c> negated, <c>ifindex N</c>; null: none, or not read.</param>
/// <param name="Origin">Where it was read: <c>nft table ip T chain C</c>, <c>iptables-legacy nat POSTROUTING</c>.</param>
public sealed record NatRule(
    NatFamily Family,
    NatRuleKind Kind,
    NatAddressRange? Addresses,
    NatPortRange? Ports,
    NatRangeFlags Flags,
    int? Protocol,
    string? OutputInterface,
    string Origin)
{
    /// <summary>Why the port range of this rule could not be read (an address or port from a map, a target revision this code does not know); null when it was.</summary>
    public string? Unreadable { get; init; }

    /// <summary>One line: <c>ipv4 snat to 10.0.0.1 ports 40000-40009 proto tcp oif lo flags random (nft table ip t chain c)</c>.</summary>
    public string Describe()
    {
        var family = Family switch { NatFamily.IPv4 => "ipv4", NatFamily.IPv6 => "ipv6", _ => "any" };
        var kind = Kind == NatRuleKind.Snat ? "snat" : "masquerade";
        var to = Addresses is { } a ? $" to {a}" : string.Empty;
        var ports = Unreadable is { } why ? $" ports unknown ({why})" : Ports is { } p ? $" ports {p}" : " ports default";
        var proto = Protocol switch { null => "any", 6 => "tcp", 17 => "udp", 132 => "sctp", 33 => "dccp", 136 => "udplite", int n => n.ToString(CultureInfo.InvariantCulture) };
        var flags = Flags == NatRangeFlags.None
            ? "-"
            : string.Join(',', new[] { (NatRangeFlags.Random, "random"), (NatRangeFlags.FullyRandom, "fully-random"), (NatRangeFlags.Persistent, "persistent") }
                .Where(f => Flags.HasFlag(f.Item1)).Select(f => f.Item2));
        return $"{family} {kind}{to}{ports} proto {proto} oif {OutputInterface ?? "any"} flags {flags} ({Origin})";
    }

    /// <summary>The NF_NAT_RANGE_* flags of a range, as the kernel keeps them, reduced to the ones that matter here.</summary>
    internal static NatRangeFlags FlagsFrom(uint kernelFlags) => (NatRangeFlags)(kernelFlags & (uint)(NatRangeFlags.Random | NatRangeFlags.Persistent | NatRangeFlags.FullyRandom));
}

/// <summary>A way of reading the rules the kernel refused, with its errno and what it takes.</summary>
/// <param name="Source">What was refused: <c>nf_tables rule dump</c>, <c>iptables-legacy nat table</c>.</param>
/// <param name="Needs">What the reader lacked, for the operator: <c>CAP_NET_ADMIN</c>, ...</param>
public sealed record NatRulesRefusal(string Source, int Errno, string Needs)
{
    /// <summary>EPERM or EACCES: a privilege is missing (the others are the kernel's own failures).</summary>
    public bool NeedsPrivilege => Errno is Native.Errno.Eperm or Native.Errno.Eacces;

    /// <summary>One line: <c>the NAT rules could not be read (needs CAP_NET_ADMIN): nf_tables rule dump: EPERM (operation not permitted)</c>.</summary>
    public string Message => NeedsPrivilege
        ? $"the NAT rules could not be read (needs {Needs}): {Source}: {Native.Errno.Describe(Errno)}"
        : $"the NAT rules could not be read: {Source}: {Native.Errno.Describe(Errno)}";
}

/// <summary>
/// The source-NAT rules read from one network namespace, and the ways of reading that were refused.
/// With any refusal the rules are incomplete: a capacity from them is not the one in force.
/// </summary>
public sealed record NatRulesReading(IReadOnlyList<NatRule> Rules, IReadOnlyList<NatRulesRefusal> Refusals)
{
    /// <summary>What each way of reading found, one line each for -v: <c>nf_tables: 3 source-NAT rules</c>, <c>iptables-legacy: none (no nat table in ...)</c>.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public bool Complete => Refusals.Count == 0;
}
