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

    /// <summary>The one sentence about one namespace: every kind's part, those at the namespace's state first.</summary>
    /// <remarks>Also the summary of a namespace in the JSON overview.</remarks>
    public static string Sentence(NamespaceResult result)
    {
        // The part that alerts comes first: it is what the operator has to read at 3 am. No ';' in
        // free text: Nagios 4 rewrites it to ':'.
        var evaluation = result.Evaluation;
        return string.Join(" - ", evaluation.Verdicts.OrderByDescending(v => v.State == evaluation.State).Select(v => v.Sentence));
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
