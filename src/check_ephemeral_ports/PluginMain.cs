using System.Diagnostics;
using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;
using EphemeralPorts.ProcFs;
using EphemeralPorts.Rendering;
using EphemeralPorts.SockDiag;

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
        JsonReport.Version = ArgumentParser.Version;
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

        var (text, code) = Check(settings);
        return Deliver(settings, text, code, stdout);
    }

    /// <summary>Runs the scan with the timeout; returns the rendered output and the exit code.</summary>
    private static (string Text, int Code) Check(Settings settings)
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
                outcome = Render(settings, Scan(settings, s => Volatile.Write(ref step, s)));
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
            return Failure(settings, settings.TimeoutState, $"timed out after {settings.Timeout.TotalSeconds:0} s while reading {Volatile.Read(ref step)}");
        }

        return failure switch
        {
            null => outcome!.Value,
            CheckException e => Failure(settings, ServiceState.Unknown, e.Message),
            _ => Failure(settings, ServiceState.Unknown, $"internal error: {failure.GetType().Name}: {failure.Message}"),
        };
    }

    /// <summary>Acquisition → model → evaluation, for one /proc tree.</summary>
    public static CheckReport Scan(Settings settings, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var scanner = new ProcScanner(new ProcRoot(settings.ProcRoot), progress);
        var kernel = scanner.ReadSettings();
        var calculator = new PortUsageCalculator(kernel);
        var notes = new List<string>();
        var diagnostics = new List<string>();
        var blindSpots = "sockets given their port by bind() before connect(), per-socket IP_LOCAL_PORT_RANGE, whether timestamps were negotiated";
        if (!ReadThroughNetlink(settings, kernel, calculator, progress, notes))
        {
            blindSpots = "bound-but-idle sockets (netlink only), " + blindSpots;
            var reads = scanner.ReadTables(calculator, settings.CheckTcp, settings.CheckUdp);
            diagnostics.AddRange(reads.Select(r => r.Present ? $"read {r.Path}: {r.Sockets} sockets" : $"read {r.Path}: absent (IPv6 disabled?)"));
        }

        var usage = calculator.Finish(settings.CheckTcp, settings.CheckUdp);
        var evaluation = PortEvaluation.Evaluate(usage, settings.Thresholds);
        diagnostics.Add($"scan took {clock.Elapsed.TotalMilliseconds:0.0} ms");
        return new CheckReport(usage, evaluation, settings.Thresholds, new ReportOptions(settings.Top, settings.Verbosity, diagnostics, notes, blindSpots));
    }

    // netlink where it is ours to use (our own namespace) and the kernel lets us; otherwise the
    // /proc tables, saying why at -v. A refusal midway would leave half a count, so the calculator
    // is only fed by netlink once the first dump was accepted (refusals come on the first reply).
    private static bool ReadThroughNetlink(Settings settings, KernelSettings kernel, PortUsageCalculator calculator, Action<string>? progress, List<string> notes)
    {
        if (settings.Source == SocketSource.Proc || (settings.Source == SocketSource.Auto && !SettingsBinder.IsOwnProc(settings.ProcRoot)))
        {
            notes.Add($"sockets read from {Path.Join(settings.ProcRoot, "net")}/{{tcp,tcp6,udp,udp6}}");
            return false;
        }

        try
        {
            SockDiagScanner.Scan(kernel.Range, settings.CheckTcp, settings.CheckUdp, calculator, progress);
            notes.Add("sockets read through netlink sock_diag, filtered in the kernel to the range");
            return true;
        }
        catch (NetlinkUnavailableException e) when (settings.Source == SocketSource.Auto && calculator.IsEmpty)
        {
            notes.Add($"netlink unavailable ({e.Message}): sockets read from /proc/net instead, bound-but-idle sockets not seen");
            return false;
        }
        catch (NetlinkUnavailableException e)
        {
            throw new CheckException($"--source netlink: {e.Message}", e);
        }
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
