using System.Diagnostics;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Bpf;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Evaluation;
using EphemeralPorts.Kinds;
using EphemeralPorts.Model;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Check;

/// <summary>
/// The check: acquisition → model → evaluation, for this namespace, one chosen namespace, or
/// every namespace of the host (the worst one shown, the rest in an overview), within the
/// timeout. It returns what it concluded and renders nothing; every failure to conclude is a
/// <see cref="CheckFailure"/>, never an exception.
/// </summary>
public static class PortCheck
{
    /// <summary>
    /// The ways of reading sockets each <c>--source</c> tries, in order; a source that cannot
    /// read the namespace at all (netlink for another /proc tree) is passed over.
    /// </summary>
    /// <param name="choice">The <c>--source</c> given.</param>
    /// <param name="bpf">The run's one BPF reader, opened the first time a namespace needs it.</param>
    public static IReadOnlyList<ISocketSource> SourceOrder(SourceChoice choice, OpenOnce<BpfReader> bpf) => choice switch
    {
        SourceChoice.Bpf => [new BpfSource(bpf)],
        SourceChoice.Netlink => [SockDiagSource.Instance],
        SourceChoice.Proc => [ProcTableSource.Instance],
        _ => [new BpfSource(bpf), SockDiagSource.Instance, ProcTableSource.Instance],
    };

    /// <summary>
    /// Runs the check within the run's timeout on one thread, abandoned (with what it opened) when
    /// the timeout comes first. Every failure to conclude is a <see cref="CheckFailure"/>.
    /// </summary>
    public static CheckOutcome Run(CheckSettings settings, RunContext run)
    {
        var worker = Worker<CheckOutcome>.Start("check", () => Pipeline(settings, run));
        if (!worker.Wait(run.Remaining))
        {
            run.Abandon();
            return new CheckFailure(settings.TimeoutState, $"timed out after {settings.Timeout.TotalSeconds:0} s while reading {run.Step}");
        }

        try
        {
            return worker.Result;
        }
        catch (CheckException e)
        {
            return new CheckFailure(ServiceState.Unknown, e.Message) { About = e.About, Fix = e.Fix };
        }
        catch (Exception e)
        {
            return new CheckFailure(ServiceState.Unknown, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private static CheckReport Pipeline(CheckSettings settings, RunContext run)
    {
        var reading = settings.Reading;
        var host = run.Host;
        NamespaceReading shown;
        NamespaceOverview? overview = null;
        if (reading.Namespaces is { } choice)
        {
            (shown, overview) = AcrossNamespaces(settings, choice, run);
        }
        else if (ProcTreeNamespace.Foreign(host) is { } foreign)
        {
            // A live /proc of another network namespace (a host's /proc in a container): its
            // files show the reader's namespace, so that namespace is entered and read instead.
            shown = InNamespaces(settings, [foreign], run, all: false).Shown;
        }
        else
        {
            using var root = host.Open();
            shown = Evaluate(settings, Acquire(reading, new NamespaceView(root), run.Report, run.Bpf));
        }

        var report = new CheckReport(shown.Result, settings.Thresholds, settings.Top) { Namespaces = overview };
        if (shown.TupleInodes is { Count: > 0 } sets)
        {
            // One walk over every process's fds, for the one namespace shown: the listed tuples'
            // sockets, and last those of the bind(addr, 0) figure's address where there is one.
            var (holders, unreadable) = SocketOwners.Find(sets, host, run.Report);
            var tuples = shown.WithBind ? holders.Count - 1 : holders.Count;
            report = report with
            {
                Processes = new ProcessHolders([.. holders.Take(tuples)], unreadable) { Bind = shown.WithBind ? holders[^1] : null, HiddenBy = HiddenProcesses.Why(host) },
            };
        }

        return report;
    }

    /// <summary>What was read of one namespace, before thresholds apply.</summary>
    internal sealed record Acquired(Readings Readings, ChainReading Chain, List<string> Diagnostics, string? Namespace)
    {
        public PortUsage Usage => Readings.Sockets;
    }

    /// <summary>One namespace evaluated; with <c>--processes</c>, the socket inodes of its listed tuples.</summary>
    private sealed record NamespaceReading(NamespaceResult Result, IReadOnlyList<IReadOnlySet<long>>? TupleInodes, bool WithBind = false);

    /// <summary>Acquisition and model: sysctls, then sockets through the first source that reads them.</summary>
    internal static Acquired Acquire(ReadingSettings reading, NamespaceView view, Action<string>? progress, OpenOnce<BpfReader> bpf, string? namespaceName = null)
    {
        // Which namespace this is, said at -v: the calling thread's own (entered, or never left).
        var inode = view.IsLiveKernel ? NamespaceFinder.Inode("/proc/thread-self/ns/net") : null;
        var which = inode is { } i ? $"network namespace read: net:[{i}] ({namespaceName ?? "this check's own"})" : null;
        var clock = Stopwatch.StartNew();
        var sysctls = new SysctlReader(view, progress);
        var kernel = sysctls.ReadSettings();

        // The namespace's own counters, read before any socket of ours is made in it: which walks
        // of the host-wide hashes can find nothing here (docs/kernel-model.md, "What looking costs").
        var counts = view.IsLiveKernel ? sysctls.ReadSockstat() : null;
        var request = new SourceRequest(view, kernel, reading.Tcp, reading.Udp, progress, counts);
        Func<PortUsageCalculator> fresh = () => new PortUsageCalculator(kernel, recordInodes: reading.Processes, deviceName: Libc.InterfaceName);
        var chain = counts is { ProvesEmpty: true } && reading.Source is SourceChoice.Auto or SourceChoice.Proc
            ? ProvenEmpty.Reading(fresh())
            : SourceChain.Read(SourceOrder(reading.Source, bpf), request, fresh);
        var usage = chain.Calculator.Finish(reading.Tcp, reading.Udp, chain.Source.SeesPortOrigin);
        List<string> diagnostics = [.. chain.Diagnostics, $"scan took {clock.Elapsed.TotalMilliseconds:0.0} ms"];

        // What the registered kinds read besides the sockets, each resource once.
        var notes = new List<string>();
        var others = new Dictionary<IResource, object>();
        foreach (var resource in ExhaustionKinds.Resources)
        {
            progress?.Invoke(resource.Name);
            others[resource] = resource.Read(new ResourceRequest(view, reading, progress ?? (_ => { })), notes);
        }

        var chained = notes.Count == 0 ? chain : chain with { Notes = [.. chain.Notes, .. notes] };
        return new Acquired(new Readings(usage, others), chained, diagnostics, which);
    }

    /// <summary>Evaluation: the thresholds applied to what was read.</summary>
    private static NamespaceReading Evaluate(CheckSettings settings, Acquired read, string? name = null)
    {
        var evaluation = ExhaustionKinds.Evaluate(read.Readings, settings.Thresholds);
        var how = new ReadingReport(read.Chain.Source.Name, read.Namespace is { } ns ? [ns, .. read.Chain.Notes] : read.Chain.Notes, read.Chain.Source.BlindSpots, read.Diagnostics);

        // Only the inodes of the listed tuples are kept; the fd walk comes once, at the end.
        List<IReadOnlySet<long>>? inodes = null;
        var withBind = false;
        if (settings.Reading.Processes && read.Usage.Tcp is { } tcp)
        {
            inodes = [.. read.Chain.Calculator.InodesOf([.. tcp.Tuples.Take(settings.Top).Select(t => t.Tuple)])];
            if (tcp.Bind?.Busiest is { } bound)
            {
                inodes.Add(read.Chain.Calculator.BoundInodesOf(bound.Address));
                withBind = true;
            }
        }

        return new NamespaceReading(new NamespaceResult(name, read.Usage, evaluation, how) { Readings = read.Readings }, inodes, withBind);
    }

    private static (NamespaceReading Shown, NamespaceOverview? Overview) AcrossNamespaces(CheckSettings settings, NamespaceChoice choice, RunContext run)
    {
        var host = run.Host;
        if (!choice.All)
        {
            NetworkNamespace target = choice.Pid is { } pid ? NamespaceFinder.ByPid(host, pid) : NamespaceFinder.ByNameOrPath(host, choice.NetnsBytes ?? System.Text.Encoding.UTF8.GetBytes(choice.Netns!));
            return InNamespaces(settings, [target], run, all: false);
        }

        if (!host.IsLive && ProcTreeNamespace.IsLiveProcfs(host))
        {
            // Its namespaces' tables are there (PID/net), their sysctls are not: this process's own would be read for each.
            throw new CheckException(Input.AllNamespaces, $"reads this host's own /proc or a tree copied from one; {host.ProcRoot} is a live /proc of another namespace", Remedy.EnterTheNamespace);
        }

        // Without the privilege to find and enter other namespaces, every one but this check's own
        // would be "not checked": an answer about next to nothing. Said at once, with the fix.
        if (host.IsLive && (!Credentials.HasEffective(Credentials.CapSysAdmin) || !Credentials.HasEffective(Credentials.CapSysPtrace)))
        {
            throw new CheckException(Input.AllNamespaces, "needs root (CAP_SYS_ADMIN to enter namespaces, CAP_SYS_PTRACE to find them), this process has not", Remedy.PrivilegesForEveryNamespace);
        }

        var (found, unseen) = NamespaceFinder.FindAll(host);
        if (found.Count == 0)
        {
            throw new CheckException(Input.AllNamespaces, $"found no network namespace in {host.ProcRoot}: no process there has a PID/ns/net link naming one");
        }

        return InNamespaces(settings, found, run, all: true, [.. unseen.Select(s => $"{s.What} ({s.Why})")], tree: !host.IsLive);
    }

    /// <param name="tree">The namespaces are a tree's, read through its PID/net; otherwise this host's, entered.</param>
    private static (NamespaceReading Shown, NamespaceOverview? Overview) InNamespaces(CheckSettings settings, IReadOnlyList<NetworkNamespace> targets, RunContext run, bool all, List<string>? unseen = null, bool tree = false)
    {
        var skipped = unseen ?? [];

        // Read by a pool of threads, one per CPU: every namespace's reading walks the same
        // host-wide hashes, so K namespaces cost K walks, shared among the cores. Each must be done
        // before the run's reading deadline, with a little time left to answer: one that is not is
        // listed as skipped, and the others still count. On a live host sockets and sysctls are
        // read through the kernel's /proc (the entered thread's own files below it); a tree's
        // namespaces through its PID/net. --processes walks the given tree.
        using var root = tree ? run.Host.Open() : run.Host.OpenKernel();
        var runs = NamespaceRunner.RunAll(targets, root, tree ? null : NamespaceFinder.OwnInode(), run.ReadingDeadline - run.Elapsed, NamespaceRunner.DefaultThreads, (target, view) =>
        {
            run.Report($"namespace {target.Name}");
            try
            {
                var read = Evaluate(settings, Acquire(settings.Reading, view, run.Report, run.Bpf, target.Name), target.Name);
                return read with { Result = read.Result with { Inode = target.Inode, Container = target.Container, Pod = target.Pod } };
            }
            catch (Exception e) when (e is not CheckException)
            {
                throw new CheckException($"namespace {target.Name}: {e.GetType().Name}: {e.Message}", e);
            }
        });
        var read = runs.Where(r => r.Result is not null).Select(r => r.Result!).ToList();
        var refused = runs.Where(r => r.Skipped is not null).Select(r => $"{r.Target.Name} ({r.Skipped})").ToList();
        var anythingUnseen = refused.Count > 0 || skipped.Count > 0;
        if (refused.Count > 0)
        {
            skipped.Add(string.Join(", ", refused.Take(3)) + (refused.Count > 3 ? $" and {refused.Count - 3} more namespaces" : string.Empty));
        }

        if (read.Count == 0)
        {
            throw new CheckException($"no network namespace could be read: {string.Join("; ", skipped)}");
        }

        var ordered = Precedence.WorstFirst(read, r => r.Result.Evaluation.State, r => r.Result.Evaluation.Percent);
        var worst = ordered[0];
        if (!all)
        {
            return (worst, null);
        }

        // A namespace known to exist but not entered, or a process whose namespace could not be
        // looked at, was not seen: the state speaks for what was.
        var state = Precedence.WithUnseen(worst.Result.Evaluation.State, anythingUnseen);
        var shown = worst with { Result = worst.Result with { Evaluation = worst.Result.Evaluation with { State = state } } };
        return (shown, new NamespaceOverview([.. ordered.Select(r => r.Result)], skipped));
    }
}
