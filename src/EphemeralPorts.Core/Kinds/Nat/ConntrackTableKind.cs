using System.Globalization;
using System.Text.Json.Nodes;
using EphemeralPorts.Metrics;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The conntrack table of a namespace: its entries against nf_conntrack_max (one value for the
/// host, read-only in other namespaces, each namespace's own count held against it alone). Full,
/// early_drop evicts unassured entries and then packets are dropped ("nf_conntrack: table full,
/// dropping packet"). Quiet on the status line while it is OK.
/// </summary>
public sealed class ConntrackTableKind : IExhaustionKind
{
    public static readonly ConntrackTableKind Instance = new();

    public static readonly MetricKind Figures = new("conntrack") { Exposition = 60, HelpNote = "the conntrack table, where the namespace tracks connections" };

    private ConntrackTableKind()
    {
    }

    public string Id => Figures.Id;

    public MetricKind Group => Figures;

    public IReadOnlyList<Metric> Metrics => NatMetrics.Table;

    public IResource? Resource => NatResource.Instance;

    public KindVerdict? Evaluate(Readings readings, Thresholds thresholds)
    {
        if (readings.Of<NatReading>(NatResource.Instance)?.Table is not { Max: > 0 } table)
        {
            return null;
        }

        var state = thresholds.Evaluate(table.Percent);
        if (state == ServiceState.Ok)
        {
            return null;
        }

        // Full: early_drop() evicts an entry not yet ASSURED from the buckets beside the new flow's,
        // else the packet is dropped. With every entry assured (the dump says so) that is now.
        var full = !table.Full ? string.Empty
            : table.Unassured == 0 ? ", new connections are dropped now"
            : table.Unassured is { } unassured ? string.Create(CultureInfo.InvariantCulture, $", new connections are dropped unless early_drop finds one of its {unassured} unassured entries beside them")
            : ", new connections are dropped unless early_drop finds an unassured entry beside them";
        return new KindVerdict(this, state, table.Percent, $"conntrack table holds {table.Count} of {table.Max} entries ({Numbers.Format(table.Percent)}%){full}",
        [
            $"raise net.netfilter.nf_conntrack_max (now {table.Max}, set in the host's namespace, each namespace's entries held against it) or shorten the timeouts of idle entries (nf_conntrack_tcp_timeout_*)",
        ]);
    }

    public IEnumerable<(string Text, int Expendable)> Details(Readings readings, int verbosity)
    {
        if (readings.Of<NatReading>(NatResource.Instance)?.Table is not { } table)
        {
            yield break;
        }

        var s = table.Statistics;
        var counters = s is null ? "counters not read" : $"insert_failed {s.InsertFailed}, drop {s.Drop}, early_drop {s.EarlyDrop}";
        yield return ($"conntrack: {table.Count} entries of {(table.Max > 0 ? table.Max.ToString(System.Globalization.CultureInfo.InvariantCulture) : "no limit")}, {counters}", 4);
        if (verbosity >= 3)
        {
            yield return ($"conntrack counters read from {table.StatisticsSource}", 0);
        }
    }

    public JsonNode? Json(Readings readings, int top)
    {
        if (readings.Of<NatReading>(NatResource.Instance)?.Table is not { } table)
        {
            return null;
        }

        var s = table.Statistics;
        return new JsonObject
        {
            ["entries"] = table.Count,
            ["max"] = table.Max,
            ["usedPct"] = Math.Round(table.Percent, 2),
            ["insertFailed"] = s?.InsertFailed,
            ["drop"] = s?.Drop,
            ["earlyDrop"] = s?.EarlyDrop,
        };
    }
}
