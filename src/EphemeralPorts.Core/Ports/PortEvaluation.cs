using EphemeralPorts.Plugin;

namespace EphemeralPorts.Ports;

/// <summary>The states that follow from a <see cref="PortUsage"/> and the thresholds, and the advice.</summary>
public sealed record PortEvaluation(ServiceState State, ServiceState TcpState, ServiceState UdpState, IReadOnlyList<string> Advice)
{
    /// <summary>The default range since Linux 4.x: 32768-60999, 28232 ports.</summary>
    public const int DefaultRangeSize = 28232;

    /// <summary>
    /// The state is the worst of the busiest TCP tuple's percentage and the UDP percentage; each is
    /// held against the same thresholds. Advice is given only when something alerts, and only what
    /// follows from what was read.
    /// </summary>
    public static PortEvaluation Evaluate(PortUsage usage, Thresholds thresholds)
    {
        var tcp = usage.Tcp is { } t ? thresholds.Evaluate(t.BusiestPercent) : ServiceState.Ok;
        var udp = usage.Udp is { } u ? thresholds.Evaluate(u.Percent) : ServiceState.Ok;
        var state = ServiceStates.Worst(tcp, udp);
        var advice = state == ServiceState.Ok ? [] : Advise(usage, tcp != ServiceState.Ok, udp != ServiceState.Ok);
        return new PortEvaluation(state, tcp, udp, advice);
    }

    private static List<string> Advise(PortUsage usage, bool tcpAlerts, bool udpAlerts)
    {
        var advice = new List<string>();
        var settings = usage.Settings;
        if (tcpAlerts && usage.Tcp is { Busiest: { } busiest } tcp)
        {
            var blocking = busiest.TimeWait - busiest.ReusableTimeWait;
            if (blocking > 0)
            {
                var loopback = busiest.Tuple.Source.IsLoopback || busiest.Tuple.Destination.IsLoopback;
                if (settings.Timestamps == 0)
                {
                    advice.Add($"{blocking} TIME_WAIT sockets hold ports of the busiest tuple and net.ipv4.tcp_timestamps=0 rules out their reuse: enable timestamps");
                }
                else if (settings.TwReuse == 0 || (settings.TwReuse == 2 && !loopback))
                {
                    advice.Add($"{blocking} TIME_WAIT sockets hold ports of the busiest tuple and net.ipv4.tcp_tw_reuse={settings.TwReuse} does not reuse them{(settings.TwReuse == 2 ? " off loopback" : string.Empty)}: set it to 1, or use keep-alive/connection pooling");
                }
            }

            if (tcp.Exclusive.Count > 0)
            {
                advice.Add($"{tcp.ExclusivePortCount} port(s) of the range are held by listeners or bind() and lost to every destination: move those services below {settings.Range.Low} or above {settings.Range.High}");
            }

            if (settings.Range.Size < DefaultRangeSize)
            {
                advice.Add($"the range {settings.Range} has only {settings.Range.Size} ports: widen net.ipv4.ip_local_port_range");
            }

            if (usage.ReservedInRange > settings.Range.Size / 10)
            {
                advice.Add($"{usage.ReservedInRange} ports of the range are in net.ipv4.ip_local_reserved_ports: reserve only what services bind");
            }

            advice.Add($"capacity is per (source, destination, port): spread {busiest.Tuple} over more source addresses, destination addresses or ports, or reuse connections");
        }

        if (udpAlerts && usage.Udp is { } udp)
        {
            advice.Add($"{udp.Sockets} UDP sockets hold {udp.Used} ports shared by every destination: close idle sockets or widen net.ipv4.ip_local_port_range");
        }

        return advice;
    }
}
