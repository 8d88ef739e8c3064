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
    public static CheckReport Run(Settings settings, Action<string>? progress) =>
        settings.Namespaces is { } choice ? AcrossNamespaces(settings, choice, progress) : One(settings, progress);

    /// <summary>One namespace: the one this thread is in, read through <paramref name="tablesDirectory"/> or netlink.</summary>
    public static CheckReport One(Settings settings, Action<string>? progress, string tablesDirectory = "net")
    {
        var clock = Stopwatch.StartNew();
        var scanner = new ProcScanner(new ProcRoot(settings.ProcRoot), progress, tablesDirectory);
        var kernel = scanner.ReadSettings();
        var calculator = new PortUsageCalculator(kernel, recordInodes: settings.Processes);
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
        List<List<SocketHolder>>? holders = null;
        var unreadable = 0;
        if (settings.Processes && usage.Tcp is { } tcp)
        {
            var sets = tcp.Tuples.Take(Math.Max(settings.Top, 1)).Select(t => calculator.InodesOf(t.Tuple)).ToList();
            (holders, unreadable) = SocketOwners.Find(sets, settings.ProcRoot, progress);
        }

        diagnostics.Add($"scan took {clock.Elapsed.TotalMilliseconds:0.0} ms");
        return new CheckReport(usage, evaluation, settings.Thresholds, new ReportOptions(settings.Top, settings.Verbosity, diagnostics, notes, blindSpots))
        {
            Holders = holders,
            UnreadableProcesses = unreadable,
        };
    }

    // netlink where it is ours to use (our own namespace) and the kernel lets us; otherwise the
    // /proc tables, saying why at -v. A refusal midway would leave half a count, so /proc is only
    // the fallback while the calculator is still empty (refusals come on the first reply).
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
