using System.Diagnostics;
using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;
using EphemeralPorts.ProcFs;
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
        try
        {
            var invocation = ArgumentParser.Parse(args);
            if (invocation.Text is not null)
            {
                stdout.Write(invocation.Text);
                return (int)ServiceState.Unknown;
            }

            return Check(invocation.Settings!, stdout);
        }
        catch (CheckException e)
        {
            return Unknown(stdout, e.Message);
        }
        catch (Exception e)
        {
            return Unknown(stdout, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private static int Check(Settings settings, TextWriter stdout)
    {
        var step = "starting";
        string? output = null;
        var state = ServiceState.Unknown;
        Exception? failure = null;

        // The scan runs on a background thread: a read that hangs (a stuck NFS-mounted proc root, a
        // FIFO) cannot be interrupted, but it must not hang the monitoring core either.
        var worker = new Thread(() =>
        {
            try
            {
                var result = Scan(settings, s => Volatile.Write(ref step, s));
                output = NagiosText.Render(result);
                state = result.State;
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
            stdout.Write(Line(settings.TimeoutState, $"timed out after {settings.Timeout.TotalSeconds:0} s while reading {Volatile.Read(ref step)}"));
            return (int)settings.TimeoutState;
        }

        if (failure is not null)
        {
            throw failure is CheckException ? failure : new CheckException($"internal error: {failure.GetType().Name}: {failure.Message}", failure);
        }

        stdout.Write(output);
        return (int)state;
    }

    /// <summary>Acquisition → model → evaluation → rendering, for one /proc tree.</summary>
    public static CheckResult Scan(Settings settings, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var scanner = new ProcScanner(new ProcRoot(settings.ProcRoot), progress);
        var kernel = scanner.ReadSettings();
        var calculator = new PortUsageCalculator(kernel);
        var reads = scanner.ReadTables(calculator, settings.CheckTcp, settings.CheckUdp);
        var usage = calculator.Finish(settings.CheckTcp, settings.CheckUdp);
        var evaluation = PortEvaluation.Evaluate(usage, settings.Thresholds);
        var diagnostics = reads
            .Select(r => r.Present ? $"read {r.Path}: {r.Sockets} sockets" : $"read {r.Path}: absent (IPv6 disabled?)")
            .Append($"scan took {clock.Elapsed.TotalMilliseconds:0.0} ms")
            .ToList();
        return NagiosReport.Build(usage, evaluation, settings.Thresholds, new ReportOptions(settings.Top, settings.Verbosity, diagnostics));
    }

    private static int Unknown(TextWriter stdout, string message)
    {
        stdout.Write(Line(ServiceState.Unknown, message));
        return (int)ServiceState.Unknown;
    }

    private static string Line(ServiceState state, string message) =>
        $"{NagiosText.ServiceName} {state.Label()} - {NagiosText.Clean(message)}\n";
}
