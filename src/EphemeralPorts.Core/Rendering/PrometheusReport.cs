using System.Globalization;
using System.Text;
using EphemeralPorts.Check;
using EphemeralPorts.Metrics;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>
/// <c>--format prometheus</c>: the text exposition format for node_exporter's textfile collector.
/// The gauges are the metric catalogue's (<see cref="MetricCatalogue"/>), in its order. Percentages
/// become ratios (0..1), as Prometheus conventions ask; the busiest tuple is labelled.
/// <c>ephemeral_ports_up</c> is 0 when the check could not read what it needs.
/// </summary>
public static class PrometheusReport
{
    public static string Render(CheckReport report)
    {
        var source = MetricSource.Of(report);
        var text = new StringBuilder();
        foreach (var metric in MetricCatalogue.All.Where(m => m.Prometheus is not null))
        {
            // The per-namespace families come just before the count of namespaces they left out.
            if (metric == MetricCatalogue.NamespaceSeriesDropped && report.Namespaces is { } all)
            {
                PerNamespace(text, all);
            }

            if (metric.PrometheusValue(source) is { } value)
            {
                Gauge(text, metric, value, metric.PrometheusLabels?.Invoke(source) ?? string.Empty);
            }
        }

        return text.ToString();
    }

    /// <summary>At most this many namespaces get series of their own: see <see cref="MetricCatalogue.MaxNamespaceSeries"/>.</summary>
    public const int MaxNamespaceSeries = MetricCatalogue.MaxNamespaceSeries;

    // One series per namespace, labelled with its name, inode and, where known, container and pod.
    private static void PerNamespace(StringBuilder text, NamespaceOverview all)
    {
        var shown = all.Checked.Take(MaxNamespaceSeries).ToList();
        var labels = shown.Select(NamespaceLabels).ToList();
        foreach (var metric in MetricCatalogue.PerNamespace)
        {
            var family = metric.PerNamespace!;
            Family(text, family.Name, family.Help, shown.Select((n, i) => (labels[i], metric.PrometheusValue(new MetricSource(n)))));
        }
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
        Gauge(text, MetricCatalogue.Up, 0);
        Gauge(text, MetricCatalogue.State, (int)state);
        return text.ToString();
    }

    private static void Gauge(StringBuilder text, Metric figure, double value, string labels = "")
    {
        var metric = "ephemeral_ports_" + figure.Prometheus;
        text.Append("# HELP ").Append(metric).Append(' ').Append(figure.Help).Append('\n');
        text.Append("# TYPE ").Append(metric).Append(figure.Counter ? " counter\n" : " gauge\n");
        text.Append(metric).Append(labels).Append(' ').Append(value.ToString("0.######", CultureInfo.InvariantCulture)).Append('\n');
    }

    private static string Escape(string value) => MetricCatalogue.Escape(value);
}
