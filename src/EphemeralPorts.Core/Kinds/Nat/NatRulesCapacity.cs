namespace EphemeralPorts.Kinds.Nat;

/// <summary>Where the port capacity of a NAT key comes from.</summary>
public enum NatCapacitySource
{
    /// <summary>The port range of a rule that may apply (the smallest of them).</summary>
    RuleRange,

    /// <summary>The rules that may apply give no ports: the kernel's range for the original port's class.</summary>
    ClassDefault,

    /// <summary>A rule that may apply has a range this code could not read: the capacity is not known.</summary>
    Unknown,

    /// <summary>No rule read can apply (none, another family, protocol or address): the class default, said at -v.</summary>
    NoRuleSeen,
}

/// <summary>The capacity in force for one NAT key and why.</summary>
/// <param name="Ports">The range ports are picked from; for <see cref="NatCapacitySource.Unknown"/> the smallest one known, or null.</param>
/// <param name="Rule">The rule that gives it (for a class default: the rule without ports); null for no rule.</param>
/// <param name="Candidates">Every rule that may apply to the key.</param>
/// <param name="Why">One line for -v.</param>
public sealed record NatCapacity(NatCapacitySource Source, NatPortRange? Ports, NatRule? Rule, IReadOnlyList<NatRule> Candidates, string Why);

/// <summary>
/// The port capacity of a source-NAT key: the rules that can have picked its port, and of their
/// ranges the smallest (several rules of one chain cannot be told apart without the packet, and the
/// check must not say there is room where a small range is full). Pure; no I/O.
/// </summary>
public static class NatRulesCapacity
{
    /// <summary>Whether <paramref name="rule"/> can have translated a flow of <paramref name="protocol"/> to <paramref name="natAddress"/>.</summary>
    public static bool MayApply(NatRule rule, int protocol, CtAddress natAddress) =>
        (rule.Family == NatFamily.Any || (rule.Family == NatFamily.IPv4) == natAddress.IsV4Mapped)
        && (rule.Protocol is null || rule.Protocol == protocol)
        && (rule.Addresses is not { } a || a.Contains(natAddress));

    /// <summary>The capacity for <paramref name="key"/>, whose flows started from <paramref name="originalPort"/> (its class picks the default range).</summary>
    public static NatCapacity For(IReadOnlyList<NatRule> rules, NatKey key, int originalPort) => For(rules, key.Protocol, key.NatAddress, originalPort);

    /// <summary>
    /// The capacity for the key of (<paramref name="protocol"/>, <paramref name="natAddress"/>) whose
    /// flows started from <paramref name="originalPort"/> (its class picks the default range).
    /// A rule of another family, another matched protocol, or whose address range leaves out the
    /// NAT address cannot apply; any other may (matches not read count as matching).
    /// </summary>
    public static NatCapacity For(IReadOnlyList<NatRule> rules, int protocol, CtAddress natAddress, int originalPort)
    {
        var candidates = rules.Where(r => MayApply(r, protocol, natAddress)).ToList();
        var fallback = NatPortRange.ClassDefault(originalPort);
        if (candidates.Count == 0)
        {
            return new NatCapacity(NatCapacitySource.NoRuleSeen, fallback, null, candidates,
                $"no source-NAT rule seen for {Protocol(protocol)} to {natAddress}: the kernel's default range {fallback}");
        }

        var known = candidates.Where(r => r.Unreadable is null).ToList();
        var smallest = known.Count == 0 ? null : known.MinBy(r => (r.Ports ?? fallback).Size);
        var of = candidates.Count == 1 ? "the one rule that may apply" : $"the smallest of {candidates.Count} rules that may apply";
        if (candidates.FirstOrDefault(r => r.Unreadable is not null) is { } unreadable)
        {
            return new NatCapacity(NatCapacitySource.Unknown, smallest is null ? null : smallest.Ports ?? fallback, unreadable, candidates,
                $"the port range of {unreadable.Origin} could not be read ({unreadable.Unreadable})");
        }

        var chosen = smallest!;
        return chosen.Ports is { } ports
            ? new NatCapacity(NatCapacitySource.RuleRange, ports, chosen, candidates, $"ports {ports} of {chosen.Origin}, {of}")
            : new NatCapacity(NatCapacitySource.ClassDefault, fallback, chosen, candidates,
                $"the kernel's default range {fallback} ({chosen.Origin} gives no ports), {of}");
    }

    private static string Protocol(int protocol) => protocol switch
    {
        6 => "tcp",
        17 => "udp",
        _ => $"protocol {protocol.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
    };
}
