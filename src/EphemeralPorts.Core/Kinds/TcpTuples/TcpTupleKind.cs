using EphemeralPorts.Metrics;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.TcpTuples;

/// <summary>
/// connect()'s ports per (source, destination, destination port) tuple: the busiest tuple's
/// used ports against the capacity the kernel guarantees it (__inet_hash_connect()).
/// </summary>
public sealed class TcpTupleKind : IExhaustionKind
{
    public static readonly TcpTupleKind Instance = new();

    public static readonly MetricKind Figures = new("tcp-tuple") { Exposition = 10 };

    /// <summary>The default range since Linux 4.x: 32768-60999, 28232 ports.</summary>
    public const int DefaultRangeSize = 28232;

    private TcpTupleKind()
    {
    }

    public string Id => Figures.Id;

    public MetricKind Group => Figures;

    public IReadOnlyList<Metric> Metrics => TcpTupleMetrics.All;

    public KindVerdict? Evaluate(Readings readings, Thresholds thresholds)
    {
        var usage = readings.Sockets;
        if (usage.Tcp is not { } tcp)
        {
            return null;
        }

        var state = thresholds.Evaluate(tcp.BusiestPercent);
        return new KindVerdict(this, state, tcp.BusiestPercent, Sentence(usage, tcp), state == ServiceState.Ok ? [] : Advise(usage, tcp));
    }

    private static string Sentence(PortUsage usage, TcpUsage tcp)
    {
        if (tcp.Busiest is not { } busiest)
        {
            return tcp.Capacity > 0
                ? $"no outbound TCP connection holds a port of the range {usage.Settings.Range}, {tcp.Capacity} ports free per destination"
                : $"no port of the range {usage.Settings.Range} is left for outbound TCP connections";
        }

        var capacity = tcp.CapacityOf(busiest);
        var text = $"busiest TCP tuple {busiest} uses {busiest.Used} of {capacity} ports ({Numbers.Format(tcp.BusiestPercent)}%)";
        return busiest.Used >= capacity ? text + ", new connections to it fail now" : text;
    }

    /// <summary>Only what follows from what was read.</summary>
    private static List<string> Advise(PortUsage usage, TcpUsage tcp)
    {
        var advice = new List<string>();
        if (tcp.Busiest is not { } busiest)
        {
            return advice;
        }

        var settings = usage.Settings;
        var blocking = busiest.TimeWait - busiest.ReusableTimeWait;
        if (blocking > 0)
        {
            var loopback = busiest.Tuple.Source.IsLoopback || busiest.Tuple.Destination.IsLoopback;
            if (settings.Timestamps == 0)
            {
                advice.Add($"tcp_timestamps=0 rules out reuse of the busiest tuple's {blocking} TIME_WAIT ports: enable timestamps");
            }
            else if (settings.TwReuse == 0 || (settings.TwReuse == 2 && !loopback))
            {
                advice.Add($"tcp_tw_reuse={settings.TwReuse} keeps the busiest tuple's {blocking} TIME_WAIT ports: set net.ipv4.tcp_tw_reuse=1 or pool connections");
            }
        }

        if (tcp.ExclusivePortCount > 0)
        {
            advice.Add($"listeners/bind() hold {tcp.ExclusivePortCount} ports of the range: move them outside {settings.Range}");
        }

        if (settings.RangeSizeIsOdd)
        {
            advice.Add($"the range {settings.Range} has an odd number of ports ({settings.Range.Size}): connect() never offers one of its end ports to some destinations, so each is guaranteed {settings.Range.Size - 1}; make its ends differ in parity (net.ipv4.ip_local_port_range = \"{settings.Range.Low} {settings.Range.High - 1}\" or \"{settings.Range.Low} {settings.Range.High + 1}\")");
        }

        if (settings.Range.Size < DefaultRangeSize)
        {
            advice.Add($"only {settings.Range.Size} ports in the range: widen net.ipv4.ip_local_port_range");
        }

        if (usage.ReservedInRange > settings.Range.Size / 10)
        {
            advice.Add($"{usage.ReservedInRange} ports of the range are reserved: reserve only ports services bind");
        }

        advice.Add("capacity is per (source, destination, port): add source or destination addresses/ports, or reuse connections");
        return advice;
    }
}
