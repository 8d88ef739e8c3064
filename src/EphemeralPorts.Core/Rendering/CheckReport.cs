using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;

namespace EphemeralPorts.Rendering;

/// <summary>
/// How much to say: <c>--top</c>, the <c>-v</c> level, what was read and how long it took (shown at
/// <c>-vvv</c>), notes on how the sockets were read (from <c>-v</c>) and what that way of reading
/// cannot see (from <c>-vv</c>).
/// </summary>
public sealed record ReportOptions(int Top, int Verbosity, IReadOnlyList<string> Diagnostics, IReadOnlyList<string>? Notes = null, string? BlindSpots = null);

/// <summary>Everything a renderer needs: the model's answer, its evaluation and the thresholds behind it.</summary>
public sealed record CheckReport(PortUsage Usage, PortEvaluation Evaluation, Thresholds Thresholds, ReportOptions Options)
{
    /// <summary>The percentage that drives the state: the worse of the busiest TCP tuple and UDP.</summary>
    public double HeadlinePercent => Math.Max(Usage.Tcp?.BusiestPercent ?? 0, Usage.Udp?.Percent ?? 0);

    /// <summary>The network namespace this report is about, when namespaces were chosen.</summary>
    public string? Namespace { get; init; }

    /// <summary><c>--all-namespaces</c>: every namespace checked (worst first) and what was skipped.</summary>
    public NamespaceOverview? Namespaces { get; init; }

    /// <summary><c>--processes</c>: the holders of each listed tuple, in the order of <c>Usage.Tcp.Tuples</c>.</summary>
    public IReadOnlyList<IReadOnlyList<SocketHolder>>? Holders { get; init; }

    /// <summary><c>--processes</c>: processes whose open files could not be read (other users', without root).</summary>
    public int UnreadableProcesses { get; init; }

    /// <summary><c>--processes</c>, before the fd walk: the socket inodes of each listed tuple.</summary>
    public IReadOnlyList<IReadOnlySet<long>>? TupleInodes { get; init; }
}

/// <summary>One checked namespace as the overview shows it.</summary>
public sealed record NamespaceLine(string Name, ServiceState State, double Percent, string Summary);

/// <summary>What <c>--all-namespaces</c> looked at and what it could not.</summary>
public sealed record NamespaceOverview(IReadOnlyList<NamespaceLine> Checked, IReadOnlyList<string> Skipped)
{
    public int Count(ServiceState state) => Checked.Count(n => n.State == state);
}

/// <summary>The output formats; each renders a report, or a failure with its state and message.</summary>
public enum OutputFormat
{
    Nagios,
    Json,
    Prometheus,
}
