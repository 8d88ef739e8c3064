using EphemeralPorts.Metrics;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>The figures of <see cref="NatTupleKind"/> and <see cref="ConntrackTableKind"/>, each declared once (see <see cref="MetricCatalogue"/>).</summary>
public static class NatMetrics
{
    public static readonly Metric NatBusiestPercent = new(NatTupleKind.Figures, "Busiest source-NAT tuple's held ports over its port range.", s => Nat(s)?.Worst?.Percent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new("nat_busiest_pct", 15, "source NAT: the busiest (NAT address, destination, port, protocol) tuple's held ports as a share of its port range (root, where the namespace NATs)", "0;100"),
        Json = "nat.busiestPct",
        Prometheus = "nat_busiest_ratio",
        PerNamespace = new("namespace_nat_busiest_ratio", "One namespace's busiest source-NAT tuple: held ports over its port range.", 6),
    };

    public static readonly Metric NatBusiestUsed = new(NatTupleKind.Figures, "Ports held by the busiest source-NAT tuple.", s => Nat(s)?.Worst?.Held)
    {
        Max = s => Nat(s)?.Worst?.Range.Size,
        Perfdata = new("nat_busiest_used", 16, "the source ports that tuple holds", "0;its range"),
        Prometheus = "nat_busiest_used",
    };

    public static readonly Metric NatFailurePercent = new(NatTupleKind.Figures, "Share of new flows to the busiest source-NAT tuple that find no port (nf_nat's search), 0..1.", s => Nat(s)?.Worst?.FailurePercent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        ThresholdSet = NatTupleKind.FailureThresholds,
        Perfdata = new("nat_failure_pct", 17, "the share of new flows to that tuple nf_nat finds no port for (thresholds `--nat-failure-warning`/`--nat-failure-critical`)", "0;100"),
        Json = "nat.failurePct",
        Prometheus = "nat_failure_ratio",
    };

    public static readonly Metric NatTuples = new(NatTupleKind.Figures, "Source-NAT tuples (NAT address, destination, port, protocol, zone) with entries.", s => Nat(s)?.Keys?.Count)
    {
        Perfdata = new("nat_tuples", 18, "source-NAT tuples with entries", "0;"),
        Prometheus = "nat_tuples",
    };

    public static readonly Metric NatBusiestInfo = new(NatTupleKind.Figures, "The busiest source-NAT tuple, in its labels.", s => Nat(s)?.Worst is null ? null : 1)
    {
        Prometheus = "nat_busiest_info",
        PrometheusLabels = s =>
        {
            var key = Nat(s)!.Worst!;
            return $"{{nat_address=\"{MetricCatalogue.Escape(key.Key.NatAddress.ToString())}\",destination=\"{MetricCatalogue.Escape(key.Key.Destination.ToString())}\",port=\"{key.Key.DestinationPort}\",protocol=\"{NatKeyUsage.ProtocolName(key.Key.Protocol)}\"}}";
        },
    };

    public static readonly Metric ConntrackPercent = new(ConntrackTableKind.Figures, "Conntrack entries of the namespace over nf_conntrack_max.", s => TableOf(s) is { Max: > 0 } t ? t.Percent : null)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new("conntrack_pct", 19, "the namespace's conntrack entries as a share of `nf_conntrack_max` (where the namespace tracks connections, like the five below)", "0;100"),
        Json = "conntrack.usedPct",
        Prometheus = "conntrack_ratio",
        PerNamespace = new("namespace_conntrack_ratio", "One namespace's conntrack entries over nf_conntrack_max.", 7),
    };

    public static readonly Metric ConntrackEntries = new(ConntrackTableKind.Figures, "Conntrack entries of the namespace (nf_conntrack_count).", s => TableOf(s)?.Count)
    {
        Max = s => TableOf(s) is { Max: > 0 } t ? t.Max : null,
        Perfdata = new("conntrack_entries", 20, "the namespace's conntrack entries", "0;nf_conntrack_max"),
        Json = "conntrack.entries",
        Prometheus = "conntrack_entries",
    };

    public static readonly Metric ConntrackMax = new(ConntrackTableKind.Figures, "nf_conntrack_max: the one limit each namespace's own entries are held against (0: none).", s => TableOf(s)?.Max)
    {
        Json = "conntrack.max",
        Prometheus = "conntrack_max",
    };

    public static readonly Metric InsertFailed = new(ConntrackTableKind.Figures, "Conntrack insertions that failed: a source-NAT flow that found no port, or a clash race.", s => TableOf(s)?.Statistics?.InsertFailed)
    {
        Unit = "c",
        Perfdata = new("conntrack_insert_failed", 21, "insertions that failed since boot: a SYN or datagram source NAT found no port for (or a clash race)", "0;"),
        Json = "conntrack.insertFailed",
        Prometheus = "conntrack_insert_failed_total",
    };

    public static readonly Metric Drop = new(ConntrackTableKind.Figures, "Packets conntrack dropped: no NAT port, or a full table.", s => TableOf(s)?.Statistics?.Drop)
    {
        Unit = "c",
        Perfdata = new("conntrack_drop", 22, "packets dropped since boot (no NAT port, or a full table)", "0;"),
        Json = "conntrack.drop",
        Prometheus = "conntrack_drop_total",
    };

    public static readonly Metric EarlyDrop = new(ConntrackTableKind.Figures, "Unassured entries evicted to make room in a full table.", s => TableOf(s)?.Statistics?.EarlyDrop)
    {
        Unit = "c",
        Perfdata = new("conntrack_early_drop", 23, "entries evicted from a full table since boot", "0;"),
        Json = "conntrack.earlyDrop",
        Prometheus = "conntrack_early_drop_total",
    };

    /// <summary>
    /// With <c>--all-namespaces</c>: every namespace's entries together. A figure, not a limit:
    /// __nf_conntrack_alloc() holds each namespace's own count against nf_conntrack_max, so the sum
    /// may pass it while every namespace still takes entries (ConntrackTableOracleTests). It has
    /// no max of its own.
    /// </summary>
    public static readonly Metric AllNamespacesEntries = new(ConntrackTableKind.Figures, "Conntrack entries of every namespace checked (--all-namespaces) together; not a limit: each namespace's own count is held against nf_conntrack_max.", s => SumOfNamespaces(s))
    {
        Perfdata = new("conntrack_entries_all", 24, "with `--all-namespaces`: the conntrack entries of every namespace checked together (not a limit: the kernel holds each namespace's own count against `nf_conntrack_max`)", "0;"),
        Prometheus = "conntrack_entries_all_namespaces",
    };

    /// <summary>In the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> Tuples = [NatBusiestPercent, NatBusiestUsed, NatFailurePercent, NatTuples, NatBusiestInfo];

    /// <summary>In the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> Table = [ConntrackPercent, ConntrackEntries, ConntrackMax, InsertFailed, Drop, EarlyDrop, AllNamespacesEntries];

    private static double? SumOfNamespaces(MetricSource s)
    {
        var tables = s.Namespaces?.Checked.Select(n => n.Readings.Of<NatReading>(NatResource.Instance)?.Table).OfType<ConntrackTable>().ToList();
        return tables is { Count: > 0 } ? tables.Sum(t => (double)t.Count) : null;
    }

    private static NatReading? Nat(MetricSource s) => s.Result.Readings.Of<NatReading>(NatResource.Instance);

    private static ConntrackTable? TableOf(MetricSource s) => Nat(s)?.Table;
}
