using EphemeralPorts.Check;
using EphemeralPorts.Metrics;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>
/// What every format says first: the summary an operator acts on (the part that alerts first)
/// and the perfdata. The Nagios text and the JSON both carry them.
/// </summary>
public static class Headline
{
    /// <summary>The status line's text: the shown namespace's sentence, and the overview of all of them.</summary>
    public static string Summary(CheckReport report)
    {
        var text = Sentence(report.Shown);
        if (report.Shown.Name is { } name)
        {
            text = $"namespace {name}: {text}";
        }

        if (report.Namespaces is { } all)
        {
            // What was not seen is said on the status line: the state speaks only for what was.
            var unseen = all.Skipped.Count > 0 ? $" - NOT checked: {string.Join(", ", all.Skipped)}" : string.Empty;
            text += $" ({NagiosReport.Count(all.Checked.Count, "namespace")} checked, {all.Count(ServiceState.Critical)} critical, {all.Count(ServiceState.Warning)} warning{unseen})";
        }

        return text;
    }

    /// <summary>The one sentence about one namespace's TCP and UDP usage.</summary>
    /// <remarks>Also the summary of a namespace in the JSON overview.</remarks>
    public static string Sentence(NamespaceResult result)
    {
        var (_, usage, evaluation, _) = result;
        var parts = new List<(ServiceState State, string Text)>();

        // bind(addr, 0) first where it exists: when it runs out, that is what the operator changes.
        if (usage.Tcp?.Bind?.Busiest is { } bound)
        {
            parts.Add((evaluation.BindState, BindSentence(bound)));
        }

        if (usage.Tcp is { } tcp)
        {
            parts.Add((evaluation.TcpState, TcpSentence(usage, tcp)));
        }

        if (usage.Udp is { } udp)
        {
            var own = udp.OwnRange is { } r ? $" of IP_LOCAL_PORT_RANGE {r}" : string.Empty;
            parts.Add((evaluation.UdpState, $"UDP uses {udp.Used} of {udp.Capacity} ports{own} ({Numbers.Format(udp.Percent)}%){(udp.Used >= udp.Capacity ? ", new UDP sockets fail now" : string.Empty)}"));
        }

        // The part that alerts comes first: it is what the operator has to read at 3 am. No ';' in
        // free text: Nagios 4 rewrites it to ':'.
        return string.Join(" - ", parts.OrderByDescending(p => p.State == evaluation.State).Select(p => p.Text));
    }

    private static string BindSentence(AddressBindUsage bound)
    {
        var took = $"{bound.BoundConnections} connection{(bound.BoundConnections == 1 ? "" : "s")} took their port by bind() before connect()";
        var bind = bound.Address.IsV4 ? $"bind({bound.Address}, 0)" : $"bind([{bound.Address}], 0)";
        return bound.Free <= 0
            ? $"{bind} has 0 of {bound.Capacity} ports left: {took}, set IP_BIND_ADDRESS_NO_PORT or drop the source address"
            : $"{bind} has {bound.Free} of {bound.Capacity} ports left ({Numbers.Format(bound.Percent)}% used): {took}";
    }

    private static string TcpSentence(PortUsage usage, TcpUsage tcp)
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

    /// <summary>
    /// The perfdata, made from the metric catalogue: its labels are a stable API (graphs depend on
    /// them), shared by the Nagios text and the JSON.
    /// </summary>
    public static List<PerfDatum> PerfData(CheckReport report)
    {
        var source = MetricSource.Of(report);
        return MetricCatalogue.Perfdata.Select(m => m.Performance(source, report.Thresholds)).OfType<PerfDatum>().ToList();
    }
}
