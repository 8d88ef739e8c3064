using EphemeralPorts.Metrics;

namespace EphemeralPorts.Kinds.Udp;

/// <summary>The figures of <see cref="UdpKind"/>, each declared once (see <see cref="MetricCatalogue"/>).</summary>
public static class UdpMetrics
{
    public static readonly Metric UdpCapacity = new(UdpKind.Figures, "UDP ports of the range, less reserved ports.", s => s.Udp?.Capacity)
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

    public static readonly Metric UdpUsed = new(UdpKind.Figures, "Distinct UDP local ports of the range in use.", s => s.Udp?.Used)
    {
        Max = s => s.Udp?.Capacity,
        Perfdata = new("udp_used", 9, "distinct UDP local ports of the range in use", "0;UDP capacity"),
        Json = "udp.used",
        Prometheus = "udp_used",
    };

    public static readonly Metric UdpPercent = new(UdpKind.Figures, "UDP used ports over UDP capacity.", s => s.Udp?.Percent)
    {
        Unit = "%",
        Max = _ => 100,
        Thresholded = true,
        Perfdata = new("udp_used_pct", 8, "UDP ports in use as a share of UDP capacity", "0;100"),
        Json = "udp.usedPct",
        Prometheus = "udp_ratio",
        PerNamespace = new("namespace_udp_ratio", "One namespace's UDP used ports over UDP capacity.", 4),
    };

    /// <summary>In the order of the Prometheus exposition.</summary>
    public static readonly IReadOnlyList<Metric> All = [UdpCapacity, UdpUsed, UdpPercent];
}
