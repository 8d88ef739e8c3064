using System.Globalization;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The source ports a SNAT or MASQUERADE rule maps into, inclusive: the rule's
/// <c>min_proto..max_proto</c> of <c>struct nf_nat_range2</c> when it names ports
/// (<c>NF_NAT_RANGE_PROTO_SPECIFIED</c>), else the class default of <see cref="ClassDefault"/>.
/// Port 0 is allowed, as the kernel allows it, so a range holds up to 65,536 ports.
/// </summary>
public readonly record struct NatPortRange
{
    /// <summary>
    /// A range from its two ends. Like <c>nf_nat_l4proto_unique_tuple</c>, which swaps
    /// <c>max &lt; min</c>, the ends may come in either order.
    /// </summary>
    public NatPortRange(int low, int high)
    {
        if (low is < 0 or > 65535 || high is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(low), string.Create(CultureInfo.InvariantCulture, $"{low}-{high} is not a NAT port range (ports are 0-65535)"));
        }

        (Low, High) = low <= high ? (low, high) : (high, low);
    }

    public int Low { get; }

    public int High { get; }

    /// <summary>The <c>range_size</c> of <c>nf_nat_l4proto_unique_tuple</c>: 1 to 65,536.</summary>
    public int Size => High - Low + 1;

    public bool Contains(int port) => port >= Low && port <= High;

    /// <summary>
    /// The range a rule without ports (plain MASQUERADE or SNAT to an address, Docker, flannel,
    /// Kubernetes' <c>--random-fully</c>) searches, chosen by the class of the flow's original
    /// source port: below 512 → 1-511, 512-1023 → 600-1023, from 1024 → 1024-65535. Mirrors the
    /// "no range specified" branch of <c>nf_nat_l4proto_unique_tuple</c> (net/netfilter/nf_nat_core.c),
    /// unchanged from 4.x to 6.x. So on such a host one key has up to three separate pools, one per
    /// class, and clients' ordinary ephemeral ports all fall in the 64,512-port one.
    /// </summary>
    public static NatPortRange ClassDefault(int originalPort)
    {
        if (originalPort is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(originalPort), string.Create(CultureInfo.InvariantCulture, $"{originalPort} is not a port"));
        }

        return originalPort switch
        {
            < 512 => new NatPortRange(1, 511),
            < 1024 => new NatPortRange(600, 1023),
            _ => new NatPortRange(1024, 65535),
        };
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Low}-{High}");
}
