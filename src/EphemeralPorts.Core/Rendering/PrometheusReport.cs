using System.Globalization;
using System.Text;
using EphemeralPorts.Check;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>
/// <c>--format prometheus</c>: the text exposition format for node_exporter's textfile collector.
/// Percentages become ratios (0..1), as Prometheus conventions ask; the busiest tuple is labelled.
/// <c>ephemeral_ports_up</c> is 0 when the check could not read what it needs.
/// </summary>
public static class PrometheusReport
{
    public static string Render(CheckReport report)
    {
        var usage = report.Shown.Usage;
        var text = new StringBuilder();
        Gauge(text, "up", "1 when the check could read the namespace's sysctls and socket tables.", 1);
        Gauge(text, "state", "Plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", (int)report.State);
        Gauge(text, "range_low", "Low end of net.ipv4.ip_local_port_range.", usage.Settings.Range.Low);
        Gauge(text, "range_high", "High end of net.ipv4.ip_local_port_range.", usage.Settings.Range.High);
        Gauge(text, "reserved", "Ports of the range in net.ipv4.ip_local_reserved_ports.", usage.ReservedInRange);
        if (usage.Tcp is { } tcp)
        {
            Gauge(text, "tcp_capacity", "Ports each (source, destination, port) tuple can use.", tcp.Capacity);
            Gauge(text, "tcp_busiest_used", "Ports used by the busiest (source, destination, port) tuple.", tcp.BusiestUsed);
            Gauge(text, "tcp_busiest_ratio", "Busiest tuple's used ports over its capacity.", tcp.BusiestPercent / 100);

            // Which tuple that is goes into an info metric: the series above keep one identity
            // when the busiest tuple changes, as graphs need.
            if (tcp.Busiest is { } b)
            {
                var labels = $"{{source=\"{Escape(b.Tuple.Source.ToString())}\",destination=\"{Escape(b.Tuple.Destination.ToString())}\",port=\"{b.Tuple.DestinationPort}\"}}";
                Gauge(text, "tcp_busiest_info", "The busiest (source, destination, port) tuple, in its labels.", 1, labels);
            }
            Gauge(text, "tcp_ports_in_use", "Distinct TCP local ports of the range in use by any socket.", tcp.PortsInUse);
            Gauge(text, "tcp_time_wait", "TIME_WAIT sockets of outbound tuples (the ones that can block connect()).", tcp.TimeWait);
            Gauge(text, "tcp_time_wait_reusable", "TIME_WAIT sockets connect() would reuse.", tcp.ReusableTimeWait);
            Gauge(text, "tcp_tuples", "(source, destination, port) tuples using the range.", tcp.TuplesInUse);
            Gauge(text, "tcp_exclusive_ports", "Ports of the range held by listen()/bind(), lost to every tuple.", tcp.ExclusivePortCount);
            if (tcp.Bind is { } bind)
            {
                Gauge(text, "tcp_bind_capacity", "Ports of the range, less reserved ones, that bind(addr, 0) can give an address.", usage.Settings.Range.Size - usage.ReservedInRange);
                Gauge(text, "tcp_bind_busiest_used", "Ports bind(addr, 0) can no longer give the busiest address where connections took their port by bind() before connect().", bind.Busiest?.Used ?? 0);
                Gauge(text, "tcp_bind_busiest_ratio", "Those ports over the bind(addr, 0) capacity.", bind.BusiestPercent / 100);
                if (bind.Busiest is { } busiest)
                {
                    Gauge(text, "tcp_bind_busiest_info", "The busiest address of bind(addr, 0), in its label.", 1, $"{{address=\"{Escape(busiest.Address.ToString())}\"}}");
                }
            }
        }

        if (report.Namespaces is { } all)
        {
            Gauge(text, "namespaces", "Network namespaces checked (--all-namespaces); the other figures are the worst one's.", all.Checked.Count);
            Gauge(text, "namespaces_critical", "Namespaces in CRITICAL.", all.Count(ServiceState.Critical));
            Gauge(text, "namespaces_warning", "Namespaces in WARNING.", all.Count(ServiceState.Warning));
            Gauge(text, "namespaces_skipped", "Namespaces or processes that could not be looked at.", all.Skipped.Count);
            PerNamespace(text, all);
        }

        if (usage.Udp is { } udp)
        {
            Gauge(text, "udp_capacity", "UDP ports of the range, less reserved ports.", udp.Capacity);
            Gauge(text, "udp_used", "Distinct UDP local ports of the range in use.", udp.Used);
            Gauge(text, "udp_ratio", "UDP used ports over UDP capacity.", udp.Percent / 100);
        }

        return text.ToString();
    }

    /// <summary>
    /// At most this many namespaces get series of their own (the worst first): a node with
    /// thousands of pods must not flood Prometheus. The rest are counted in
    /// ephemeral_ports_namespace_series_dropped.
    /// </summary>
    public const int MaxNamespaceSeries = 250;

    // One series per namespace, labelled with its name, inode and, where known, container and pod.
    private static void PerNamespace(StringBuilder text, NamespaceOverview all)
    {
        var shown = all.Checked.Take(MaxNamespaceSeries).ToList();
        var labels = shown.Select(NamespaceLabels).ToList();
        Family(text, "namespace_state", "Plugin state of one namespace (--all-namespaces): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", shown.Select((n, i) => (labels[i], (double?)(int)n.Evaluation.State)));
        Family(text, "namespace_tcp_capacity", "Ports each (source, destination, port) tuple of one namespace can use.", shown.Select((n, i) => (labels[i], (double?)n.Usage.Tcp?.Capacity)));
        Family(text, "namespace_tcp_busiest_used", "Ports used by one namespace's busiest tuple.", shown.Select((n, i) => (labels[i], (double?)n.Usage.Tcp?.BusiestUsed)));
        Family(text, "namespace_tcp_busiest_ratio", "One namespace's busiest tuple's used ports over its capacity.", shown.Select((n, i) => (labels[i], n.Usage.Tcp?.BusiestPercent / 100)));
        Family(text, "namespace_udp_ratio", "One namespace's UDP used ports over UDP capacity.", shown.Select((n, i) => (labels[i], n.Usage.Udp?.Percent / 100)));
        Family(text, "namespace_tcp_bind_busiest_ratio", "One namespace's busiest bind(addr, 0) address: used ports over capacity (BPF reading only).", shown.Select((n, i) => (labels[i], n.Usage.Tcp?.Bind?.BusiestPercent / 100)));
        Gauge(text, "namespace_series_dropped", $"Namespaces checked but given no series of their own (at most {MaxNamespaceSeries}, the worst first).", all.Checked.Count - shown.Count);
    }

    private static string NamespaceLabels(NamespaceResult n)
    {
        var labels = new StringBuilder("{namespace=\"").Append(Escape(n.Name ?? string.Empty)).Append('"');
        if (n.Inode is { } inode)
        {
            labels.Append(",inode=\"").Append(inode.ToString(CultureInfo.InvariantCulture)).Append('"');
        }

        if (n.Container is { } container)
        {
            labels.Append(",container=\"").Append(Escape(container)).Append('"');
        }

        if (n.Pod is { } pod)
        {
            labels.Append(",pod_uid=\"").Append(Escape(pod)).Append('"');
        }

        return labels.Append('}').ToString();
    }

    /// <summary>One metric family with a sample per labelled value; values that are null have no sample.</summary>
    private static void Family(StringBuilder text, string name, string help, IEnumerable<(string Labels, double? Value)> samples)
    {
        var present = samples.Where(s => s.Value is not null).ToList();
        if (present.Count == 0)
        {
            return;
        }

        var metric = "ephemeral_ports_" + name;
        text.Append("# HELP ").Append(metric).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(metric).Append(" gauge\n");
        foreach (var (labels, value) in present)
        {
            text.Append(metric).Append(labels).Append(' ').Append(value!.Value.ToString("0.######", CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    public static string RenderFailure(ServiceState state, string message)
    {
        var text = new StringBuilder();
        text.Append("# ").Append(NagiosText.Prefix(state)).Append(message.Replace('\n', ' ')).Append('\n');
        Gauge(text, "up", "1 when the check could read the namespace's sysctls and socket tables.", 0);
        Gauge(text, "state", "Plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", (int)state);
        return text.ToString();
    }

    private static void Gauge(StringBuilder text, string name, string help, double value, string labels = "")
    {
        var metric = "ephemeral_ports_" + name;
        text.Append("# HELP ").Append(metric).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(metric).Append(" gauge\n");
        text.Append(metric).Append(labels).Append(' ').Append(value.ToString("0.######", CultureInfo.InvariantCulture)).Append('\n');
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
