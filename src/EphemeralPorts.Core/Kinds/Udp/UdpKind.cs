using EphemeralPorts.Metrics;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Udp;

/// <summary>
/// UDP: a socket's port is its own for every destination (udp_lib_get_port()), so the ports in
/// use count against the whole range, or a socket's own IP_LOCAL_PORT_RANGE where that is fuller.
/// </summary>
public sealed class UdpKind : IExhaustionKind
{
    public static readonly UdpKind Instance = new();

    public static readonly MetricKind Figures = new("udp") { Exposition = 40 };

    private UdpKind()
    {
    }

    public string Id => Figures.Id;

    public MetricKind Group => Figures;

    public IReadOnlyList<Metric> Metrics => UdpMetrics.All;

    public KindVerdict? Evaluate(Readings readings, Thresholds thresholds)
    {
        if (readings.Sockets.Udp is not { } udp)
        {
            return null;
        }

        var state = thresholds.Evaluate(udp.Percent);
        return new KindVerdict(this, state, udp.Percent, Sentence(udp), state != ServiceState.Ok && udp.Used > 0 ? [Advice(udp)] : []);
    }

    private static string Sentence(UdpUsage udp)
    {
        var own = udp.OwnRange is { } r ? $" of IP_LOCAL_PORT_RANGE {r}" : string.Empty;
        return $"UDP uses {udp.Used} of {udp.Capacity} ports{own} ({Numbers.Format(udp.Percent)}%){(udp.Used >= udp.Capacity ? ", new UDP sockets fail now" : string.Empty)}";
    }

    private static string Advice(UdpUsage udp) => udp.OwnRange is { } own
        ? $"UDP sockets with their own IP_LOCAL_PORT_RANGE {own} hold {udp.Used} of its {udp.Capacity} ports: widen that option's range or close idle sockets"
        : $"{udp.Sockets} UDP sockets hold {udp.Used} ports, each for every destination: close idle sockets or widen the range";
}
