using EphemeralPorts.Metrics;

namespace EphemeralPorts.Kinds.TcpTuples;

/// <summary>The figures of <see cref="TcpTupleKind"/>, each declared once (see <see cref="MetricCatalogue"/>).</summary>
public static class TcpTupleMetrics
{
    public static readonly Metric TcpCapacity = new(TcpTupleKind.Figures, "Ports each (source, destination, port) tuple can use.", s => s.Tcp?.Capacity)
    {
        Perfdata = new("capacity", 10, "ports each TCP tuple can use", "0;") { HelpNote = "ports per TCP tuple" },
        Json = "tcp.capacity",
        Prometheus = "tcp_capacity",
        PerNamespace = new("namespace_tcp_capacity", "Ports each (source, destination, port) tuple of one namespace can use.", 1),
    };

    public static readonly Metric TcpBusiestUsed = new(TcpTupleKind.Figures, "Ports used by the busiest (source, destination, port) tuple.", s => s.Tcp?.BusiestUsed)
    {
        Max = s => s.Tcp?.BusiestCapacity,
        Perfdata = new("tcp_busiest_used", 2, "ports used by the busiest tuple", "0;capacity"),
        Json = "tcp.busiestUsed",
        Prometheus = "tcp_busiest_used",
        PerNamespace = new("namespace_tcp_busiest_used", "Ports used by one namespace's busiest tuple.", 2),
    };

    public static readonly Metric TcpBusiestPercent = new(TcpTupleKind.Figures, "Busiest tuple's used ports over its capacity.", s => s.Tcp?.BusiestPercent)
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
    public static readonly Metric TcpBusiestInfo = new(TcpTupleKind.Figures, "The busiest (source, destination, port) tuple, in its labels.", s => s.Tcp?.Busiest is null ? null : 1)
    {
        Prometheus = "tcp_busiest_info",
        PrometheusLabels = BusiestTupleLabels,
    };

    public static readonly Metric TcpPortsInUse = new(TcpTupleKind.Figures, "Distinct TCP local ports of the range in use by any socket.", s => s.Tcp?.PortsInUse)
    {
        Max = s => s.Usage.Settings.Range.Size,
        Perfdata = new("tcp_ports_in_use", 3, "distinct TCP local ports of the range in use by any socket (`bind(0)` pressure)", "0;range size"),
        Json = "tcp.portsInUse",
        Prometheus = "tcp_ports_in_use",
    };

    public static readonly Metric TcpTimeWait = new(TcpTupleKind.Figures, "TIME_WAIT sockets of outbound tuples (the ones that can block connect()).", s => s.Tcp?.TimeWait)
    {
        Perfdata = new("tcp_time_wait", 4, "TIME_WAIT sockets of outbound tuples (the ones that can block `connect()`)", "0;"),
        Json = "tcp.timeWait",
        Prometheus = "tcp_time_wait",
    };

    public static readonly Metric TcpTimeWaitReusable = new(TcpTupleKind.Figures, "TIME_WAIT sockets connect() would reuse.", s => s.Tcp?.ReusableTimeWait)
    {
        Json = "tcp.timeWaitReusable",
        Prometheus = "tcp_time_wait_reusable",
    };

    public static readonly Metric TcpTuples = new(TcpTupleKind.Figures, "(source, destination, port) tuples using the range.", s => s.Tcp?.TuplesInUse)
    {
        Perfdata = new("tcp_tuples", 5, "(source, destination, port) tuples using the range", "0;"),
        Json = "tcp.tuples",
        Prometheus = "tcp_tuples",
    };

    public static readonly Metric TcpExclusivePorts = new(TcpTupleKind.Figures, "Ports of the range held by listen()/bind(), lost to every tuple.", s => s.Tcp?.ExclusivePortCount)
    {
        Prometheus = "tcp_exclusive_ports",
    };

    /// <summary>In the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> All =
        [TcpCapacity, TcpBusiestUsed, TcpBusiestPercent, TcpBusiestInfo, TcpPortsInUse, TcpTimeWait, TcpTimeWaitReusable, TcpTuples, TcpExclusivePorts];

    private static string BusiestTupleLabels(MetricSource s)
    {
        var tuple = s.Tcp!.Busiest!.Tuple;
        return $"{{source=\"{MetricCatalogue.Escape(tuple.Source.ToString())}\",destination=\"{MetricCatalogue.Escape(tuple.Destination.ToString())}\",port=\"{tuple.DestinationPort}\"}}";
    }
}
