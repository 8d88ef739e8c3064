using EphemeralPorts.Check;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Metrics;

/// <summary>
/// What a figure speaks about: a kind of exhaustion (each kind declares its own group), the run
/// itself, or the overview of <c>--all-namespaces</c>.
/// </summary>
/// <param name="Id">Its name (a kind's <see cref="Kinds.IExhaustionKind.Id"/>).</param>
public sealed record MetricKind(string Id)
{
    /// <summary>The run itself and the range every kind shares: up, state, the range's ends, reserved ports.</summary>
    public static readonly MetricKind Check = new("check") { Exposition = 0 };

    /// <summary>The overview of <c>--all-namespaces</c>.</summary>
    public static readonly MetricKind Namespaces = new("namespaces") { Option = "--all-namespaces", Exposition = 30 };

    /// <summary>The option without which its figures do not exist, for <c>--help</c>; null when none.</summary>
    public string? Option { get; init; }

    /// <summary>What <c>--help</c> says of its perfdata, in parentheses after its labels; null when nothing.</summary>
    public string? HelpNote { get; init; }

    /// <summary>
    /// Where its series stand in the Prometheus exposition, lowest first: the published order
    /// (run 0, TCP tuples 10, bind(addr, 0) 20, the namespace overview 30, UDP 40); a new kind
    /// takes a number of its own.
    /// </summary>
    public int Exposition { get; init; } = 100;
}

/// <summary>
/// What a figure is read from: one namespace's result and, for the whole report, the overview
/// of <c>--all-namespaces</c>. Per-namespace series read a namespace's own result, without an overview.
/// </summary>
public sealed record MetricSource(NamespaceResult Result, NamespaceOverview? Namespaces = null)
{
    public static MetricSource Of(CheckReport report) => new(report.Shown, report.Namespaces);

    public PortUsage Usage => Result.Usage;

    public TcpUsage? Tcp => Result.Usage.Tcp;

    public UdpUsage? Udp => Result.Usage.Udp;
}

/// <summary>
/// The figure as perfdata: its label (a stable API, graphs depend on it), where it stands in the
/// perfdata (the published order), and what the README's perfdata table says of it.
/// </summary>
/// <param name="Label">The perfdata label, also the key of the JSON document's <c>perfdata</c>.</param>
/// <param name="Position">Its place in the perfdata: the published order, which differs from the Prometheus one.</param>
/// <param name="Meaning">The README table's "meaning" cell, as written there (markdown).</param>
/// <param name="Bounds">The README table's "min;max" cell: what the min and max fields carry.</param>
public sealed record PerfdataName(string Label, int Position, string Meaning, string Bounds)
{
    /// <summary>
    /// Where the perfdata shows the figure in fewer readings than the other formats do; null
    /// when it shows it wherever the figure exists.
    /// </summary>
    public Func<MetricSource, bool>? OnlyWhen { get; init; }

    /// <summary>Said after the label in the README's table when <see cref="OnlyWhen"/> narrows it (markdown).</summary>
    public string? Condition { get; init; }

    /// <summary>Said after the label in <c>--help</c>'s perfdata list, in parentheses.</summary>
    public string? HelpNote { get; init; }
}

/// <summary>The figure as one Prometheus series per namespace (<c>--all-namespaces</c>), labelled with the namespace.</summary>
/// <param name="Name">The family's name without the <c>ephemeral_ports_</c> prefix.</param>
/// <param name="Help">Its HELP text (published, kept as is).</param>
/// <param name="Position">Its place among the per-namespace families (the published order).</param>
public sealed record PerNamespaceFamily(string Name, string Help, int Position);

/// <summary>
/// One figure the plugin reports, declared once: how each format names it, its unit and bounds,
/// whether the thresholds apply to it, its help text and the kind of exhaustion it belongs to.
/// A format that has no name for it does not carry it (see <see cref="MetricCatalogue"/> for
/// where the formats drifted apart before there was a catalogue).
/// </summary>
/// <param name="Kind">The kind of exhaustion it speaks about.</param>
/// <param name="Help">What it is, as Prometheus' HELP line says it (published, kept as is).</param>
/// <param name="Value">The figure, or null where the reading does not have it (a protocol not checked, no BPF reading, no --all-namespaces).</param>
public sealed record Metric(MetricKind Kind, string Help, Func<MetricSource, double?> Value)
{
    /// <summary>Empty, "%" (a percentage, which Prometheus carries as a ratio, 0..1) or "c" (a counter).</summary>
    public string Unit { get; init; } = string.Empty;

    /// <summary>Its least value (perfdata's min field).</summary>
    public double Min { get; init; }

    /// <summary>Its greatest value where one is known (perfdata's max field).</summary>
    public Func<MetricSource, double?> Max { get; init; } = _ => null;

    /// <summary>Whether thresholds apply to it (perfdata's warn and crit fields): -w and -c, or the set <see cref="ThresholdSet"/> names.</summary>
    public bool Thresholded { get; init; }

    /// <summary>The name of the threshold set that applies (<see cref="Thresholds.For"/>); null for -w and -c.</summary>
    public string? ThresholdSet { get; init; }

    /// <summary>
    /// A count that only grows (the kernel's counters): perfdata's unit <c>c</c>, a Prometheus
    /// counter (whose name then ends in <c>_total</c>, as the exposition format asks).
    /// </summary>
    public bool Counter => Unit == "c";

    /// <summary>The perfdata label and its documentation; null where perfdata does not carry it.</summary>
    public PerfdataName? Perfdata { get; init; }

    /// <summary>The <c>--format json</c> field, as a JSONPath below <c>$.</c>; null where the JSON has none.</summary>
    public string? Json { get; init; }

    /// <summary>The <c>--format prometheus</c> name without the <c>ephemeral_ports_</c> prefix; null where it has none.</summary>
    public string? Prometheus { get; init; }

    /// <summary>The Prometheus labels of an info metric (the value is 1, the labels say which).</summary>
    public Func<MetricSource, string>? PrometheusLabels { get; init; }

    /// <summary>The per-namespace Prometheus family, where there is one.</summary>
    public PerNamespaceFamily? PerNamespace { get; init; }

    public bool IsPercentage => Unit == "%";

    /// <summary>The figure as Prometheus carries it: percentages as ratios.</summary>
    public double? PrometheusValue(MetricSource source) =>
        Value(source) is { } value ? (IsPercentage ? value / 100 : value) : null;

    /// <summary>The figure as perfdata, or null where the perfdata does not carry it for this reading.</summary>
    public PerfDatum? Performance(MetricSource source, Thresholds thresholds)
    {
        if (Perfdata is not { } perf || Value(source) is not { } value || perf.OnlyWhen?.Invoke(source) == false)
        {
            return null;
        }

        var set = thresholds.For(ThresholdSet);
        return Thresholded
            ? new PerfDatum(perf.Label, value, Unit, set.Warning.PerfDataValue, set.Critical.PerfDataValue, Min, Max(source))
            : new PerfDatum(perf.Label, value, Unit, Min: Min, Max: Max(source));
    }
}
