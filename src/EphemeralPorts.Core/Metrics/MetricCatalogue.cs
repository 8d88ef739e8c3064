using System.Globalization;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Metrics;

/// <summary>
/// Every figure the plugin reports, each declared once. Perfdata (and the JSON document's
/// <c>perfdata</c>), the Prometheus gauges (global and per namespace) and <c>--help</c>'s perfdata
/// list are made from this list; the README's perfdata table, the integration tests' label list
/// and the Zabbix templates are held to it by tests (tests/EphemeralPorts.Tests/Metrics/).
/// Adding a figure to every format is one declaration here.
/// </summary>
/// <remarks>
/// <para>The list is in the order the Prometheus exposition prints it; perfdata prints in the order
/// of <see cref="PerfdataName.Position"/>. Both orders, and every name, were published before
/// the catalogue existed and are kept (graphs and templates depend on them).</para>
/// <para>Where the formats drifted apart, the declarations say so rather than change an output:
/// <c>range_low</c>, <c>range_high</c>, <c>reserved</c>, <c>tcp_time_wait_reusable</c>,
/// <c>tcp_exclusive_ports</c>, <c>tcp_bind_capacity</c> and the info series have no perfdata; the
/// perfdata label <c>capacity</c> is the TCP capacity, and the UDP capacity only where TCP is not
/// checked (two figures, one label); the bind(addr, 0) perfdata appears only where an address
/// exists, its Prometheus gauges wherever the reading can see bind() (0 without an address).</para>
/// </remarks>
public static class MetricCatalogue
{
    /// <summary>
    /// At most this many namespaces get Prometheus series of their own (the worst first): a node
    /// with thousands of pods must not flood Prometheus. The rest are counted in
    /// <c>ephemeral_ports_namespace_series_dropped</c>.
    /// </summary>
    public const int MaxNamespaceSeries = 250;

    public static readonly Metric Up = new(MetricKind.Check, "1 when the check could read the namespace's sysctls and socket tables.", _ => 1)
    {
        Prometheus = "up",
    };

    public static readonly Metric State = new(MetricKind.Check, "Plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", s => (int)s.Result.Evaluation.State)
    {
        Json = "exitCode",
        Prometheus = "state",
        PerNamespace = new("namespace_state", "Plugin state of one namespace (--all-namespaces): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", 0),
    };

    public static readonly Metric RangeLow = new(MetricKind.Check, "Low end of net.ipv4.ip_local_port_range.", s => s.Usage.Settings.Range.Low)
    {
        Json = "range.low",
        Prometheus = "range_low",
    };

    public static readonly Metric RangeHigh = new(MetricKind.Check, "High end of net.ipv4.ip_local_port_range.", s => s.Usage.Settings.Range.High)
    {
        Json = "range.high",
        Prometheus = "range_high",
    };

    public static readonly Metric Reserved = new(MetricKind.Check, "Ports of the range in net.ipv4.ip_local_reserved_ports.", s => s.Usage.ReservedInRange)
    {
        Json = "reservedInRange",
        Prometheus = "reserved",
    };

    public static readonly Metric Namespaces = new(MetricKind.Namespaces, "Network namespaces checked (--all-namespaces); the other figures are the worst one's.", s => s.Namespaces?.Checked.Count)
    {
        Perfdata = new("namespaces", 11, "namespaces checked (`--all-namespaces` only, like the three below)", "0;"),
        Prometheus = "namespaces",
    };

    public static readonly Metric NamespacesCritical = new(MetricKind.Namespaces, "Namespaces in CRITICAL.", s => s.Namespaces?.Count(ServiceState.Critical))
    {
        Perfdata = new("namespaces_critical", 13, "namespaces in CRITICAL", "0;"),
        Prometheus = "namespaces_critical",
    };

    public static readonly Metric NamespacesWarning = new(MetricKind.Namespaces, "Namespaces in WARNING.", s => s.Namespaces?.Count(ServiceState.Warning))
    {
        Perfdata = new("namespaces_warning", 12, "namespaces in WARNING", "0;"),
        Prometheus = "namespaces_warning",
    };

    public static readonly Metric NamespacesSkipped = new(MetricKind.Namespaces, "Namespaces or processes that could not be looked at.", s => s.Namespaces?.Skipped.Count)
    {
        Perfdata = new("namespaces_skipped", 14, "groups of namespaces or processes that could not be looked at", "0;"),
        Prometheus = "namespaces_skipped",
    };

    /// <summary>Printed after the per-namespace families, whose left-out namespaces it counts.</summary>
    public static readonly Metric NamespaceSeriesDropped = new(
        MetricKind.Namespaces,
        $"Namespaces checked but given no series of their own (at most {MaxNamespaceSeries.ToString(CultureInfo.InvariantCulture)}, the worst first).",
        s => s.Namespaces is { } all ? all.Checked.Count - Math.Min(all.Checked.Count, MaxNamespaceSeries) : null)
    {
        Prometheus = "namespace_series_dropped",
    };

    /// <summary>
    /// Every figure: the run's, each registered kind's (<see cref="Kinds.ExhaustionKinds.All"/>)
    /// and the overview of <c>--all-namespaces</c>, in the order of the Prometheus exposition
    /// (by <see cref="MetricKind.Exposition"/>, then as declared).
    /// </summary>
    public static readonly IReadOnlyList<Metric> All =
    [
        .. new[] { Up, State, RangeLow, RangeHigh, Reserved }
            .Concat(Kinds.ExhaustionKinds.All.SelectMany(k => k.Metrics))
            .Concat([Namespaces, NamespacesCritical, NamespacesWarning, NamespacesSkipped, NamespaceSeriesDropped])
            .OrderBy(m => m.Kind.Exposition),
    ];

    /// <summary>The figures perfdata carries, in the published perfdata order (a label may have two, see <see cref="UdpCapacity"/>).</summary>
    public static IEnumerable<Metric> Perfdata => All.Where(m => m.Perfdata is not null).OrderBy(m => m.Perfdata!.Position);

    /// <summary>The per-namespace Prometheus families, in their published order.</summary>
    public static IEnumerable<Metric> PerNamespace => All.Where(m => m.PerNamespace is not null).OrderBy(m => m.PerNamespace!.Position);

    /// <summary>A Prometheus label value: backslash, double quote and newline escaped.</summary>
    public static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
