using EphemeralPorts.Check;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>The output formats.</summary>
public enum OutputFormat
{
    Nagios,
    Json,
    Prometheus,
}

/// <summary>What to print and the exit code that goes with it.</summary>
public sealed record RenderedOutput(string Text, int ExitCode);

/// <summary>Renders an outcome in the chosen format; renders only, reads and decides nothing.</summary>
public static class Renderer
{
    /// <summary>
    /// Nagios text exits with the state; JSON and Prometheus exit 0 once written, because their
    /// consumers (Zabbix, node_exporter) discard exit codes and read the state inside.
    /// </summary>
    public static RenderedOutput Render(CheckOutcome outcome, OutputFormat format, int verbosity) => (outcome, format) switch
    {
        (CheckReport report, OutputFormat.Json) => new(JsonReport.Render(report), 0),
        (CheckReport report, OutputFormat.Prometheus) => new(PrometheusReport.Render(report), 0),
        (CheckReport report, _) => new(NagiosReport.Render(report, verbosity), (int)report.State),
        (CheckFailure failure, _) => Failure(failure.State, failure.Message, format),
        _ => throw new ArgumentOutOfRangeException(nameof(outcome)),
    };

    public static RenderedOutput Failure(ServiceState state, string message, OutputFormat format) => format switch
    {
        OutputFormat.Json => new(JsonReport.RenderFailure(state, message), 0),
        OutputFormat.Prometheus => new(PrometheusReport.RenderFailure(state, message), 0),
        _ => new(NagiosText.Line(state, message), (int)state),
    };
}
