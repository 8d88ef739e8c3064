using System.Globalization;
using System.Text.Json.Nodes;
using EphemeralPorts.Metrics;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// Source-NAT ports per key (nf_nat's get_unique_tuple): the worst key's held ports against the
/// range in force, and the odds that a new flow needing a port finds none, which nf_nat's windowed
/// search makes rise before the range is full. Both alert: the fill against -w/-c, the odds
/// against their own set (<see cref="FailureThresholds"/>). A failure drops the SYN silently.
/// </summary>
public sealed class NatTupleKind : IExhaustionKind
{
    public static readonly NatTupleKind Instance = new();

    /// <summary>The name of the failure odds' threshold set (<see cref="Thresholds.For"/>).</summary>
    public const string FailureThresholds = "nat-failure";

    public static readonly MetricKind Figures = new("nat-tuple") { Exposition = 50, HelpNote = "source NAT, where this namespace NATs and root read its conntrack table" };

    private NatTupleKind()
    {
    }

    public string Id => Figures.Id;

    public MetricKind Group => Figures;

    public IReadOnlyList<Metric> Metrics => NatMetrics.Tuples;

    public IResource? Resource => NatResource.Instance;

    public string JsonKey => "nat";

    public KindVerdict? Evaluate(Readings readings, Thresholds thresholds)
    {
        if (readings.Of<NatReading>(NatResource.Instance) is { KeysUnread: true } unread)
        {
            // Not read where the namespace may well NAT: UNKNOWN, never OK by omission.
            return new KindVerdict(this, ServiceState.Unknown, 0, $"{unread.KeysNotRead}, and this namespace forwards packets ({unread.Forwarding}) and tracks {unread.Table!.Count} connection{(unread.Table.Count == 1 ? string.Empty : "s")}: it may source-NAT", [
                "NAT tuples are read from the conntrack table with CAP_NET_ADMIN: run the plugin as root (sudo: icinga/sudoers/check_ephemeral_ports) or with that capability; where this namespace forwards without source NAT, --ignore-nat",
            ]);
        }

        if (readings.Of<NatReading>(NatResource.Instance) is not { Worst: { } worst } nat)
        {
            return null;
        }

        var fill = thresholds.Evaluate(worst.Percent);
        var odds = thresholds.For(FailureThresholds).Evaluate(worst.FailurePercent);
        var state = worst.FailsNow ? ServiceState.Critical : ServiceStates.Worst(fill, odds);
        var sentence = Sentence(worst);
        if (nat.UnknownRanges > 0)
        {
            // Counted against a guess: what was seen still counts when it is worse, never OK.
            state = Evaluation.Precedence.WithUnseen(state, anythingUnseen: true);
            sentence += $" - the port range in force of {nat.UnknownRanges} NAT tuple{(nat.UnknownRanges == 1 ? " is" : "s are")} not known ({nat.Keys!.First(k => !k.RangeKnown).RangeSource}): give it with --nat-range";
        }

        return new KindVerdict(this, state, worst.Percent, sentence, state is ServiceState.Ok or ServiceState.Unknown ? [] : Advise(worst));
    }

    private static string Sentence(NatKeyUsage worst)
    {
        var text = $"busiest NAT tuple {worst} holds {worst.Held} of {worst.Range.Size} source ports ({Numbers.Format(worst.Percent)}%)";
        return worst.FailsNow ? text + ", new connections to it fail now (SYNs dropped)"
            : worst.FailureOdds > 0 ? text + $", {Numbers.Format(worst.FailurePercent)}% of new flows to it find no port"
            : text;
    }

    private static List<string> Advise(NatKeyUsage worst) =>
    [
        $"source NAT gives each (NAT address, destination, port) {worst.Range.Size} ports ({worst.Range}): widen the SNAT/MASQUERADE port range, add NAT addresses (snat to a range: each client is hashed to one), or reuse connections to {worst.Key.Destination}",
        "failures are silent: watch conntrack insert_failed and drop (perfdata conntrack_insert_failed, conntrack_drop)",
    ];

    public IEnumerable<(string Text, int Expendable)> Details(Readings readings, int verbosity)
    {
        if (readings.Of<NatReading>(NatResource.Instance) is not { } nat)
        {
            yield break;
        }

        if (nat.KeysNotRead is { } why && nat.Table is { Count: > 0 } && !nat.KeysUnread && (!nat.Ignored || verbosity >= 1))
        {
            // Said on the status line where it decides the state; here where it does not.
            yield return (nat.Forwarding is null && !nat.Ignored ? why + " (this namespace forwards no packets: net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are 0)" : why, 0);
        }

        if (nat.Keys is not { Count: > 0 } keys)
        {
            yield break;
        }

        // Within 1 KB the heading goes with the other tuples, the busiest line stays: no heading over nothing.
        yield return ($"NAT tuples (NAT address -> destination:port/protocol held/range), {keys.Count} in all:", 3);
        var first = true;
        foreach (var key in keys.Take(verbosity >= 1 ? 20 : 3))
        {
            var odds = key.FailureOdds > 0 ? $", {Numbers.Format(key.FailurePercent)}% of new flows fail" : string.Empty;
            var soft = key.Soft > 0 ? string.Create(CultureInfo.InvariantCulture, $", {key.Soft} TIME_WAIT/CLOSE") : string.Empty;
            yield return ($"  {key} {key.Held}/{key.Range.Size} ({Numbers.Format(key.Percent)}%){odds}{soft}", first ? 1 : 3);
            first = false;
        }

        if (verbosity >= 1)
        {
            yield return ($"NAT range of the busiest tuple: {keys[0].Range} ({keys[0].RangeSource}); TIME_WAIT/CLOSE entries with SRC_NAT counted {(nat.SoftEvictable ? "as this kernel (6.5+) treats them: evictable in the last 32 tries of each window" : "as held (this kernel does not evict them)")}", 0);
        }
    }

    public JsonNode? Json(Readings readings, int top)
    {
        if (readings.Of<NatReading>(NatResource.Instance) is not { } nat || (nat.Keys is not { Count: > 0 } && nat.KeysNotRead is null))
        {
            return null;
        }

        var worst = nat.Worst;
        var section = new NatJson(
            nat.KeysNotRead,
            nat.KeysNotRead is null ? null : nat.Forwarding,
            worst?.Percent,
            worst?.FailurePercent,
            [.. (nat.Keys ?? []).Take(top).Select(NatTupleJson.Of)]);
        return System.Text.Json.JsonSerializer.SerializeToNode(section, NatJsonContext.Default.NatJson);
    }

    public Type? JsonShape => typeof(NatJson);
}
