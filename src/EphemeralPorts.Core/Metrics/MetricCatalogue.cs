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

    public static readonly Metric TcpCapacity = new(MetricKind.TcpTuple, "Ports each (source, destination, port) tuple can use.", s => s.Tcp?.Capacity)
    {
        Perfdata = new("capacity", 10, "ports each TCP tuple can use", "0;") { HelpNote = "ports per TCP tuple" },
        Json = "tcp.capacity",
        Prometheus = "tcp_capacity",
        PerNamespace = new("namespace_tcp_capacity", "Ports each (source, destination, port) tuple of one namespace can use.", 1),
    };

    public static readonly Metric TcpBusiestUsed = new(MetricKind.TcpTuple, "Ports used by the busiest (source, destination, port) tuple.", s => s.Tcp?.BusiestUsed)
    {
        Max = s => s.Tcp?.BusiestCapacity,
        Perfdata = new("tcp_busiest_used", 2, "ports used by the busiest tuple", "0;capacity"),
        Json = "tcp.busiestUsed",
        Prometheus = "tcp_busiest_used",
        PerNamespace = new("namespace_tcp_busiest_used", "Ports used by one namespace's busiest tuple.", 2),
    };

    public static readonly Metric TcpBusiestPercent = new(MetricKind.TcpTuple, "Busiest tuple's used ports over its capacity.", s => s.Tcp?.BusiestPercent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new("tcp_busiest_pct", 1, "the busiest tuple's used ports as a share of its capacity", "0;100"),
        Json = "tcp.busiestPct",
        Prometheus = "tcp_busiest_ratio",
        PerNamespace = new("namespace_tcp_busiest_ratio", "One namespace's busiest tuple's used ports over its capacity.", 3),
    };

    // Which tuple is the busiest goes into an info metric: the series above keep one identity
    // when the busiest tuple changes, as graphs need.
    public static readonly Metric TcpBusiestInfo = new(MetricKind.TcpTuple, "The busiest (source, destination, port) tuple, in its labels.", s => s.Tcp?.Busiest is null ? null : 1)
    {
        Prometheus = "tcp_busiest_info",
        PrometheusLabels = BusiestTupleLabels,
    };

    public static readonly Metric TcpPortsInUse = new(MetricKind.TcpTuple, "Distinct TCP local ports of the range in use by any socket.", s => s.Tcp?.PortsInUse)
    {
        Max = s => s.Usage.Settings.Range.Size,
        Perfdata = new("tcp_ports_in_use", 3, "distinct TCP local ports of the range in use by any socket (`bind(0)` pressure)", "0;range size"),
        Json = "tcp.portsInUse",
        Prometheus = "tcp_ports_in_use",
    };

    public static readonly Metric TcpTimeWait = new(MetricKind.TcpTuple, "TIME_WAIT sockets of outbound tuples (the ones that can block connect()).", s => s.Tcp?.TimeWait)
    {
        Perfdata = new("tcp_time_wait", 4, "TIME_WAIT sockets of outbound tuples (the ones that can block `connect()`)", "0;"),
        Json = "tcp.timeWait",
        Prometheus = "tcp_time_wait",
    };

    public static readonly Metric TcpTimeWaitReusable = new(MetricKind.TcpTuple, "TIME_WAIT sockets connect() would reuse.", s => s.Tcp?.ReusableTimeWait)
    {
        Json = "tcp.timeWaitReusable",
        Prometheus = "tcp_time_wait_reusable",
    };

    public static readonly Metric TcpTuples = new(MetricKind.TcpTuple, "(source, destination, port) tuples using the range.", s => s.Tcp?.TuplesInUse)
    {
        Perfdata = new("tcp_tuples", 5, "(source, destination, port) tuples using the range", "0;"),
        Json = "tcp.tuples",
        Prometheus = "tcp_tuples",
    };

    public static readonly Metric TcpExclusivePorts = new(MetricKind.TcpTuple, "Ports of the range held by listen()/bind(), lost to every tuple.", s => s.Tcp?.ExclusivePortCount)
    {
        Prometheus = "tcp_exclusive_ports",
    };

    public static readonly Metric BindCapacity = new(
        MetricKind.Bind,
        "Ports of the range, less reserved ones, that bind(addr, 0) can give an address.",
        s => s.Tcp?.Bind is null ? null : s.Usage.Settings.Range.Size - s.Usage.ReservedInRange)
    {
        Prometheus = "tcp_bind_capacity",
    };

    public static readonly Metric BindBusiestUsed = new(
        MetricKind.Bind,
        "Ports bind(addr, 0) can no longer give the busiest address where connections took their port by bind() before connect().",
        s => s.Tcp?.Bind is { } bind ? bind.Busiest?.Used ?? 0 : null)
    {
        Max = s => s.Tcp?.Bind?.Busiest?.Capacity,
        Perfdata = new("tcp_bind_busiest_used", 7, "the ports `bind(addr, 0)` can no longer give that address", "0;capacity") { OnlyWhen = HasBindAddress },
        Prometheus = "tcp_bind_busiest_used",
    };

    public static readonly Metric BindBusiestPercent = new(MetricKind.Bind, "Those ports over the bind(addr, 0) capacity.", s => s.Tcp?.Bind?.BusiestPercent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new(
            "tcp_bind_busiest_pct",
            6,
            "`bind(addr, 0)` on the busiest source address where connections took their port by `bind()` before `connect()`: its used ports as a share of the range less reserved ports (BPF reading only, where such an address exists)",
            "0;100")
        {
            OnlyWhen = HasBindAddress,
        },
        Json = "tcp.bindBeforeConnect.busiestPct",
        Prometheus = "tcp_bind_busiest_ratio",
        PerNamespace = new("namespace_tcp_bind_busiest_ratio", "One namespace's busiest bind(addr, 0) address: used ports over capacity (BPF reading only).", 5),
    };

    public static readonly Metric BindBusiestInfo = new(MetricKind.Bind, "The busiest address of bind(addr, 0), in its label.", s => s.Tcp?.Bind?.Busiest is null ? null : 1)
    {
        Prometheus = "tcp_bind_busiest_info",
        PrometheusLabels = s => $"{{address=\"{Escape(s.Tcp!.Bind!.Busiest!.Address.ToString())}\"}}",
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

    public static readonly Metric UdpCapacity = new(MetricKind.Udp, "UDP ports of the range, less reserved ports.", s => s.Udp?.Capacity)
    {
        // The one label with two meanings: published before the catalogue, kept.
        Perfdata = new("capacity", 10, "UDP ports of the range, less reserved ports", "0;")
        {
            OnlyWhen = s => s.Tcp is null,
            Condition = "with `--protocol udp`",
        },
        Json = "udp.capacity",
        Prometheus = "udp_capacity",
    };

    public static readonly Metric UdpUsed = new(MetricKind.Udp, "Distinct UDP local ports of the range in use.", s => s.Udp?.Used)
    {
        Max = s => s.Udp?.Capacity,
        Perfdata = new("udp_used", 9, "distinct UDP local ports of the range in use", "0;UDP capacity"),
        Json = "udp.used",
        Prometheus = "udp_used",
    };

    public static readonly Metric UdpPercent = new(MetricKind.Udp, "UDP used ports over UDP capacity.", s => s.Udp?.Percent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new("udp_used_pct", 8, "UDP ports in use as a share of UDP capacity", "0;100"),
        Json = "udp.usedPct",
        Prometheus = "udp_ratio",
        PerNamespace = new("namespace_udp_ratio", "One namespace's UDP used ports over UDP capacity.", 4),
    };

    /// <summary>Every figure, in the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> All =
    [
        Up, State, RangeLow, RangeHigh, Reserved,
        TcpCapacity, TcpBusiestUsed, TcpBusiestPercent, TcpBusiestInfo, TcpPortsInUse, TcpTimeWait, TcpTimeWaitReusable, TcpTuples, TcpExclusivePorts,
        BindCapacity, BindBusiestUsed, BindBusiestPercent, BindBusiestInfo,
        Namespaces, NamespacesCritical, NamespacesWarning, NamespacesSkipped, NamespaceSeriesDropped,
        UdpCapacity, UdpUsed, UdpPercent,
    ];

    /// <summary>The figures perfdata carries, in the published perfdata order (a label may have two, see <see cref="UdpCapacity"/>).</summary>
    public static IEnumerable<Metric> Perfdata => All.Where(m => m.Perfdata is not null).OrderBy(m => m.Perfdata!.Position);

    /// <summary>The per-namespace Prometheus families, in their published order.</summary>
    public static IEnumerable<Metric> PerNamespace => All.Where(m => m.PerNamespace is not null).OrderBy(m => m.PerNamespace!.Position);

    /// <summary>When a kind's figures exist at all, where an option or a reading decides it (for <c>--help</c>).</summary>
    public static string? Option(MetricKind kind) => kind == MetricKind.Namespaces ? "--all-namespaces" : null;

    /// <summary>What <c>--help</c> says of a kind's perfdata, in parentheses after its labels.</summary>
    public static string? HelpNote(MetricKind kind) =>
        kind == MetricKind.Bind ? "bind(addr, 0), BPF reading, where connections took their port by bind() before connect()" : null;

    private static string BusiestTupleLabels(MetricSource s)
    {
        var tuple = s.Tcp!.Busiest!.Tuple;
        return $"{{source=\"{Escape(tuple.Source.ToString())}\",destination=\"{Escape(tuple.Destination.ToString())}\",port=\"{tuple.DestinationPort}\"}}";
    }

    private static bool HasBindAddress(MetricSource s) => s.Tcp?.Bind?.Busiest is not null;

    /// <summary>A Prometheus label value: backslash, double quote and newline escaped.</summary>
    public static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
