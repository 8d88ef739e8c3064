using System.Diagnostics;
using EphemeralPorts.Namespaces;
using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;
using EphemeralPorts.ProcFs;
using EphemeralPorts.Rendering;
using EphemeralPorts.SockDiag;

namespace EphemeralPorts.Cli;

/// <summary>
/// Acquisition → model → evaluation for what the settings ask: this namespace, one chosen
/// namespace, or every namespace of the host (the worst one reported, the rest in an overview).
/// </summary>
public static class Scanner
{
    public static CheckReport Run(Settings settings, Action<string>? progress, EarlyScan? early = null)
    {
        var report = settings.Namespaces is { } choice ? AcrossNamespaces(settings, choice, progress)
            : early is not null && early.Fits(settings) ? Evaluate(settings, early.Wait())
            : One(settings, progress);
        return settings.Processes ? WithHolders(report, settings, progress) : report;
    }

    // One walk over every process's fds, for the one report that is shown (the worst namespace's).
    private static CheckReport WithHolders(CheckReport report, Settings settings, Action<string>? progress)
    {
        if (report.TupleInodes is not { Count: > 0 } sets)
        {
            return report;
        }

        var (holders, unreadable) = SocketOwners.Find(sets, settings.ProcRoot, progress);
        return report with { Holders = holders, UnreadableProcesses = unreadable, TupleInodes = null };
    }

    /// <summary>One namespace: the one this thread is in, read through <paramref name="tablesDirectory"/> or netlink.</summary>
    public static CheckReport One(Settings settings, Action<string>? progress, string tablesDirectory = "net") =>
        Evaluate(settings, Acquire(settings, progress, tablesDirectory));

    /// <summary>What was read of one namespace, before thresholds and options for the output apply.</summary>
    public sealed record Acquisition(PortUsage Usage, PortUsageCalculator Calculator, List<string> Notes, List<string> Diagnostics, string BlindSpots, bool ThroughNetlink);

    /// <summary>Acquisition and model: sysctls, sockets, usage. Depends on where and what to read only.</summary>
    public static Acquisition Acquire(Settings settings, Action<string>? progress, string tablesDirectory = "net")
    {
        var clock = Stopwatch.StartNew();
        var scanner = new ProcScanner(new ProcRoot(settings.ProcRoot), progress, tablesDirectory);
        var kernel = scanner.ReadSettings();
        var notes = new List<string>();
        var diagnostics = new List<string>();
        var blindSpots = "sockets given their port by bind() before connect(), accepted connections that outlived their in-range listener, per-socket IP_LOCAL_PORT_RANGE, SO_REUSEADDR, whether timestamps were negotiated";
        var calculator = ReadThroughNetlink(settings, kernel, progress, notes, diagnostics, scanner, tablesDirectory);
        var throughNetlink = calculator is not null;
        if (calculator is null)
        {
            blindSpots = "bound-but-idle sockets (netlink only), " + blindSpots;
            calculator = new PortUsageCalculator(kernel, recordInodes: settings.Processes);
            var reads = scanner.ReadTables(calculator, settings.CheckTcp, settings.CheckUdp);
            diagnostics.AddRange(reads.Select(r => r.Present ? $"read {r.Path}: {r.Sockets} sockets" : $"read {r.Path}: absent (IPv6 disabled?)"));
        }

        var usage = calculator.Finish(settings.CheckTcp, settings.CheckUdp);
        diagnostics.Add($"scan took {clock.Elapsed.TotalMilliseconds:0.0} ms");
        return new Acquisition(usage, calculator, notes, diagnostics, blindSpots, throughNetlink);
    }

    /// <summary>Evaluation: the thresholds and output options of <paramref name="settings"/> applied to what was read.</summary>
    public static CheckReport Evaluate(Settings settings, Acquisition read)
    {
        var evaluation = PortEvaluation.Evaluate(read.Usage, settings.Thresholds);
        return new CheckReport(read.Usage, evaluation, settings.Thresholds, new ReportOptions(settings.Top, settings.Verbosity, read.Diagnostics, read.Notes, read.BlindSpots))
        {
            // Only the inodes of the listed tuples are kept; the fd walk comes once, at the end.
            TupleInodes = settings.Processes && read.Usage.Tcp is { } tcp
                ? read.Calculator.InodesOf(tcp.Tuples.Take(settings.Top).Select(t => t.Tuple).ToList())
                : null,
        };
    }

    // netlink where it is ours to use (our own namespace) and the kernel lets us; otherwise the
    // /proc tables, saying why at -v. A refusal can come from any of the parallel dumps after others
    // have counted sockets, so a fallback starts again with a fresh calculator. Returns null for /proc.
    private static PortUsageCalculator? ReadThroughNetlink(Settings settings, KernelSettings kernel, Action<string>? progress, List<string> notes, List<string> diagnostics, ProcScanner scanner, string tablesDirectory)
    {
        if (settings.Source == SocketSource.Proc || (settings.Source == SocketSource.Auto && !SettingsBinder.IsOwnProc(settings.ProcRoot)))
        {
            notes.Add($"sockets read from {Path.Join(settings.ProcRoot, tablesDirectory)}/{{tcp,tcp6,udp,udp6}}");
            return null;
        }

        var calculator = new PortUsageCalculator(kernel, recordInodes: settings.Processes);
        try
        {
            // How the dump is split only: a hint that cannot be read leaves the parallel lanes.
            var hint = settings.CheckTcp ? scanner.TcpSocketCountHint() : null;
            if (settings.CheckTcp)
            {
                var seen = hint is null ? "sockstat unreadable" : $"{hint} TCP socket{(hint == 1 ? "" : "s")} in the namespace (sockstat)";
                diagnostics.Add(hint < SockDiagScanner.ParallelFromTcpSockets
                    ? $"netlink: {seen}, one lane"
                    : $"netlink: {seen}, TCP dumped in two lanes by port, UDP in a third");
            }

            SockDiagScanner.Scan(kernel.Range, settings.CheckTcp, settings.CheckUdp, calculator, progress, hint);
            notes.Add("sockets read through netlink sock_diag, filtered in the kernel to the range");
            return calculator;
        }
        catch (NetlinkUnavailableException e) when (settings.Source == SocketSource.Auto)
        {
            notes.Add($"netlink unavailable ({e.Message}): sockets read from /proc/net instead, bound-but-idle sockets not seen");
            return null;
        }
        catch (NetlinkUnavailableException e)
        {
            throw new CheckException($"--source netlink: {e.Message}", e);
        }
    }

    private static CheckReport AcrossNamespaces(Settings settings, NamespaceChoice choice, Action<string>? progress)
    {
        var skipped = new List<string>();
        List<NetworkNamespace> targets;
        if (choice.All)
        {
            var (found, unseen) = NamespaceFinder.FindAll();
            targets = found;
            skipped.AddRange(unseen.Select(s => $"{s.What} ({s.Why})"));
        }
        else
        {
            targets = [choice.Pid is { } pid ? NamespaceFinder.ByPid(pid) : NamespaceFinder.ByNameOrPath(choice.Netns!)];
        }

        var own = NamespaceFinder.OwnInode();
        var reports = new List<CheckReport>();
        var refused = new List<string>();
        foreach (var target in targets)
        {
            progress?.Invoke($"namespace {target.Name}");
            if (InNamespace(target, own, settings, progress, out var why) is { } report)
            {
                reports.Add(report with { Namespace = target.Name });
            }
            else
            {
                refused.Add($"{target.Name} ({why})");
            }
        }

        if (refused.Count > 0)
        {
            skipped.Add(string.Join(", ", refused.Take(3)) + (refused.Count > 3 ? $" and {refused.Count - 3} more namespaces" : string.Empty));
        }

        if (reports.Count == 0)
        {
            throw new CheckException($"no network namespace could be read: {string.Join("; ", skipped)}");
        }

        // Worst first: by state (CRITICAL > UNKNOWN > WARNING > OK), then by the headline percentage.
        var ordered = reports
            .OrderByDescending(r => ServiceStates.Severity(r.Evaluation.State))
            .ThenByDescending(r => r.HeadlinePercent)
            .ToList();
        var worst = ordered[0];
        if (!choice.All)
        {
            return worst with { Namespaces = null };
        }

        var overview = new NamespaceOverview(
            ordered.Select(r => new NamespaceLine(r.Namespace!, r.Evaluation.State, r.HeadlinePercent, NagiosReport.Sentence(r.Usage, r.Evaluation))).ToList(),
            skipped);

        // A namespace known to exist but not entered is not OK: it was not seen. What was seen
        // still counts when it is worse (a WARNING or CRITICAL there is real).
        if (refused.Count > 0 && ServiceStates.Severity(worst.Evaluation.State) < ServiceStates.Severity(ServiceState.Unknown))
        {
            worst = worst with { Evaluation = worst.Evaluation with { State = ServiceState.Unknown } };
        }

        return worst with { Namespaces = overview };
    }

    /// <summary>
    /// Checks one namespace on a thread of its own that enters it with setns(CLONE_NEWNET): the
    /// sysctls under /proc/sys/net and netlink sockets follow the thread's namespace, and
    /// /proc/thread-self/net holds its tables. The process's other threads never move.
    /// </summary>
    private static CheckReport? InNamespace(NetworkNamespace target, ulong own, Settings settings, Action<string>? progress, out string why)
    {
        if (target.Inode == own)
        {
            try
            {
                why = string.Empty;
                return One(settings, progress);
            }
            catch (CheckException e)
            {
                why = e.Message;
                return null;
            }
        }

        CheckReport? result = null;
        Exception? failure = null;
        var reason = string.Empty;
        var thread = new Thread(() =>
        {
            try
            {
                using var entered = NamespaceSwitch.Enter(target.Path, out var errno);
                if (entered is null)
                {
                    reason = $"setns: {NamespaceFinder.Describe(errno)}";
                    return;
                }

                result = One(settings, progress, "thread-self/net");
            }
            catch (CheckException e)
            {
                reason = e.Message;
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "netns",
        };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw failure is CheckException ? failure : new CheckException($"namespace {target.Name}: {failure.GetType().Name}: {failure.Message}", failure);
        }

        why = reason;
        return result;
    }
}
