using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Evaluation;

/// <summary>The states that follow from a <see cref="PortUsage"/> and the thresholds, and the advice.</summary>
public sealed record PortEvaluation(ServiceState State, ServiceState TcpState, ServiceState UdpState, IReadOnlyList<string> Advice, ServiceState BindState = ServiceState.Ok)
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
        var bind = usage.Tcp?.Bind?.Busiest is { } b ? thresholds.Evaluate(b.Percent) : ServiceState.Ok;
        var state = ServiceStates.Worst(ServiceStates.Worst(tcp, udp), bind);
        var advice = state == ServiceState.Ok ? [] : Advise(usage, tcp != ServiceState.Ok, udp != ServiceState.Ok, bind != ServiceState.Ok);
        string? runbook = null;
        if (state is ServiceState.Warning or ServiceState.Critical)
        {
            // Where the on-call engineer reads on: the runbook's section of the worst part.
            var (part, partState) = new[] { ("tcp-tuple", tcp), ("bind", bind), ("udp", udp) }.OrderByDescending(p => ServiceStates.Severity(p.Item2)).First();
            runbook = $"{Runbook}#{part}-{(partState == ServiceState.Critical ? "critical" : "warning")}";
        }

        return new PortEvaluation(state, tcp, udp, advice, bind) { RunbookSection = runbook };
    }

    /// <summary>The runbook's section for the worst part, where something alerts.</summary>
    public string? RunbookSection { get; init; }

    /// <summary>The runbook as the packages install it (docs/runbook.md in the repository).</summary>
    public const string Runbook = "/usr/share/doc/check-ephemeral-ports/runbook.md";

    private static List<string> Advise(PortUsage usage, bool tcpAlerts, bool udpAlerts, bool bindAlerts)
    {
        var advice = new List<string>();
        if (bindAlerts && usage.Tcp?.Bind?.Busiest is { } bound)
        {
            advice.Add($"{bound.BoundConnections} connections from {bound.Address} took their port by bind() before connect() (Go's Dialer.LocalAddr, Java's Socket(host, port, localAddr, 0), Python's source_address): each holds it from every destination. Set IP_BIND_ADDRESS_NO_PORT before bind(), or drop the source address");
        }

        var settings = usage.Settings;
        if (tcpAlerts && usage.Tcp is { Busiest: { } busiest } tcp)
        {
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
        }

        if (udpAlerts && usage.Udp is { Used: > 0 } udp)
        {
            advice.Add(udp.OwnRange is { } own
                ? $"UDP sockets with their own IP_LOCAL_PORT_RANGE {own} hold {udp.Used} of its {udp.Capacity} ports: widen that option's range or close idle sockets"
                : $"{udp.Sockets} UDP sockets hold {udp.Used} ports, each for every destination: close idle sockets or widen the range");
        }

        return advice;
    }
}
