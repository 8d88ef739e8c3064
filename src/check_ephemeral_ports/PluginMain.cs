using EphemeralPorts.Plugin;
using EphemeralPorts.Rendering;

namespace EphemeralPorts.Cli;

/// <summary>
/// One run of the plugin: parse, scan, evaluate, render. Holds the only catch-all and the timeout,
/// returns the exit code instead of exiting, and writes only to the writer it is given, so tests
/// drive it in-process.
/// </summary>
public static class PluginMain
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        var early = EarlyScan.StartIfDefault(args);
        Settings settings;
        try
        {
            var invocation = ArgumentParser.Parse(args);
            if (invocation.Text is not null)
            {
                stdout.Write(invocation.Text);
                return (int)ServiceState.Unknown;
            }

            settings = invocation.Settings!;
        }
        catch (CheckException e)
        {
            // The arguments themselves are wrong, the format among them: plain plugin text.
            stdout.Write(Line(ServiceState.Unknown, e.Message));
            return (int)ServiceState.Unknown;
        }
        catch (Exception e)
        {
            stdout.Write(Line(ServiceState.Unknown, $"internal error: {e.GetType().Name}: {e.Message}"));
            return (int)ServiceState.Unknown;
        }

        var (text, code) = Check(settings, early);
        return Deliver(settings, text, code, stdout);
    }

    /// <summary>Runs the scan with the timeout; returns the rendered output and the exit code.</summary>
    private static (string Text, int Code) Check(Settings settings, EarlyScan? early)
    {
        var step = "starting";
        (string Text, int Code)? outcome = null;
        Exception? failure = null;

        // The scan runs on a background thread: a read that hangs (a stuck NFS-mounted proc root, a
        // FIFO) cannot be interrupted, but it must not hang the monitoring core either.
        var worker = new Thread(() =>
        {
            try
            {
                outcome = Render(settings, Scanner.Run(settings, s => Volatile.Write(ref step, s), early));
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "scan",
        };
        worker.Start();
        if (!worker.Join(settings.Timeout))
        {
            var where = early?.Step ?? Volatile.Read(ref step);
            return Failure(settings, settings.TimeoutState, $"timed out after {settings.Timeout.TotalSeconds:0} s while reading {where}");
        }

        return failure switch
        {
            null => outcome!.Value,
            CheckException e => Failure(settings, ServiceState.Unknown, e.Message),
            _ => Failure(settings, ServiceState.Unknown, $"internal error: {failure.GetType().Name}: {failure.Message}"),
        };
    }

    // Nagios text exits with the state; JSON and Prometheus exit 0 once written, because their
    // consumers (Zabbix, node_exporter) discard exit codes and read the state inside.
    private static (string, int) Render(Settings settings, CheckReport report) => settings.Format switch
    {
        OutputFormat.Json => (JsonReport.Render(report), 0),
        OutputFormat.Prometheus => (PrometheusReport.Render(report), 0),
        _ => Nagios(report),
    };

    private static (string, int) Nagios(CheckReport report)
    {
        var result = NagiosReport.Build(report);
        return (NagiosText.Render(result), (int)result.State);
    }

    private static (string, int) Failure(Settings settings, ServiceState state, string message) => settings.Format switch
    {
        OutputFormat.Json => (JsonReport.RenderFailure(state, message), 0),
        OutputFormat.Prometheus => (PrometheusReport.RenderFailure(state, message), 0),
        _ => (Line(state, message), (int)state),
    };

    private static int Deliver(Settings settings, string text, int code, TextWriter stdout)
    {
        if (settings.Output is null)
        {
            stdout.Write(text);
            return code;
        }

        try
        {
            AtomicFile.Write(settings.Output, text);
            return code;
        }
        catch (CheckException e)
        {
            stdout.Write(Line(ServiceState.Unknown, e.Message));
            return (int)ServiceState.Unknown;
        }
    }

    private static string Line(ServiceState state, string message) =>
        $"{NagiosText.ServiceName} {state.Label()} - {NagiosText.Clean(message)}\n";
}
