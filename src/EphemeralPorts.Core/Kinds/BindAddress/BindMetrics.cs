using EphemeralPorts.Metrics;

namespace EphemeralPorts.Kinds.BindAddress;

/// <summary>The figures of <see cref="BindKind"/>, each declared once (see <see cref="MetricCatalogue"/>).</summary>
public static class BindMetrics
{
    public static readonly Metric BindCapacity = new(
        BindKind.Figures,
        "Ports of the range, less reserved ones, that bind(addr, 0) can give an address.",
        s => s.Tcp?.Bind is null ? null : s.Usage.Settings.Range.Size - s.Usage.ReservedInRange)
    {
        Prometheus = "tcp_bind_capacity",
    };

    public static readonly Metric BindBusiestUsed = new(
        BindKind.Figures,
        "Ports bind(addr, 0) can no longer give the busiest address where connections took their port by bind() before connect().",
        s => s.Tcp?.Bind is { } bind ? bind.Busiest?.Used ?? 0 : null)
    {
        Max = s => s.Tcp?.Bind?.Busiest?.Capacity,
        Perfdata = new("tcp_bind_busiest_used", 7, "the ports `bind(addr, 0)` can no longer give that address", "0;capacity") { OnlyWhen = HasBindAddress },
        Prometheus = "tcp_bind_busiest_used",
    };

    public static readonly Metric BindBusiestPercent = new(BindKind.Figures, "Those ports over the bind(addr, 0) capacity.", s => s.Tcp?.Bind?.BusiestPercent)
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

    public static readonly Metric BindBusiestInfo = new(BindKind.Figures, "The busiest address of bind(addr, 0), in its label.", s => s.Tcp?.Bind?.Busiest is null ? null : 1)
    {
        Prometheus = "tcp_bind_busiest_info",
        PrometheusLabels = s => $"{{address=\"{MetricCatalogue.Escape(s.Tcp!.Bind!.Busiest!.Address.ToString())}\"}}",
    };

    /// <summary>In the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> All = [BindCapacity, BindBusiestUsed, BindBusiestPercent, BindBusiestInfo];

    private static bool HasBindAddress(MetricSource s) => s.Tcp?.Bind?.Busiest is not null;
}
