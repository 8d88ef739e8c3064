using System.Diagnostics;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Bpf;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Evaluation;
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
    /// read the namespace at all (netlink for another /proc tree) is passed over. BPF reads
    /// through the run's one reader, <paramref name="bpf"/>.
    /// </summary>
    public static IReadOnlyList<ISocketSource> SourceOrder(SourceChoice choice, OpenOnce<BpfReader> bpf) => choice switch
    {
        SourceChoice.Bpf => [new BpfSource(bpf)],
        SourceChoice.Netlink => [SockDiagSource.Instance],
        SourceChoice.Proc => [ProcTableSource.Instance],
        _ => [new BpfSource(bpf), SockDiagSource.Instance, ProcTableSource.Instance],
    };

    /// <summary>
    /// Starts reading this namespace before the thresholds are known (the command line is still
    /// being parsed); <see cref="Run"/> uses it when the settings ask for the same reading.
    /// </summary>
    public static Prefetch Prefetch(ReadingSettings reading) => new(reading);

    public static CheckOutcome Run(CheckSettings settings, Prefetch? early = null)
    {
        var progress = new Progress();
        var deadline = Stopwatch.StartNew();

        // The run's BPF reader (the early reading's, when there is one): opened at most once,
        // closed when the run ends (a thread abandoned at the timeout finds it closed).
        using var bpf = early?.Bpf ?? BpfSource.NewReader();
        var worker = Worker<CheckOutcome>.Start("check", () => Pipeline(settings, progress, early, deadline, bpf));
        if (!worker.Wait(settings.Timeout))
        {
            return new CheckFailure(settings.TimeoutState, $"timed out after {settings.Timeout.TotalSeconds:0} s while reading {progress.Step}");
        }

        try
        {
            return worker.Result;
        }
        catch (CheckException e)
        {
            return new CheckFailure(ServiceState.Unknown, e.Message);
        }
        catch (Exception e)
        {
            return new CheckFailure(ServiceState.Unknown, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private static CheckReport Pipeline(CheckSettings settings, Progress progress, Prefetch? early, Stopwatch clock, OpenOnce<BpfReader> bpf)
    {
        var reading = settings.Reading;
        NamespaceReading shown;
        NamespaceOverview? overview = null;
        if (reading.Namespaces is { } choice)
        {
            (shown, overview) = AcrossNamespaces(settings, choice, progress, clock, bpf);
        }
        else if (ProcTreeNamespace.Foreign(reading.ProcRoot) is { } foreign)
        {
            // A live /proc of another network namespace (a host's /proc in a container): its
            // files show the reader's namespace, so that namespace is entered and read instead.
            shown = InNamespaces(settings, [foreign], progress, clock, bpf, all: false).Shown;
        }
        else if (early is not null && early.Fits(reading, progress))
        {
            shown = Evaluate(settings, early.Result);
        }
        else
        {
            using var root = new ProcRoot(reading.ProcRoot);
            shown = Evaluate(settings, Acquire(reading, new NamespaceView(root), progress.Report, bpf));
        }

        var report = new CheckReport(shown.Result, settings.Thresholds, settings.Top) { Namespaces = overview };
        if (shown.TupleInodes is { Count: > 0 } sets)
        {
            // One walk over every process's fds, for the one namespace shown: the listed tuples'
            // sockets, and last those of the bind(addr, 0) figure's address where there is one.
            var (holders, unreadable) = SocketOwners.Find(sets, reading.ProcRoot, progress.Report);
            var tuples = shown.WithBind ? holders.Count - 1 : holders.Count;
            report = report with
            {
                Processes = new ProcessHolders([.. holders.Take(tuples)], unreadable) { Bind = shown.WithBind ? holders[^1] : null, HiddenBy = HiddenProcesses.Why(reading.ProcRoot) },
            };
        }

        return report;
    }

    /// <summary>What was read of one namespace, before thresholds apply.</summary>
    internal sealed record Acquired(PortUsage Usage, ChainReading Chain, List<string> Diagnostics, string? Namespace);

    /// <summary>One namespace evaluated; with <c>--processes</c>, the socket inodes of its listed tuples.</summary>
    private sealed record NamespaceReading(NamespaceResult Result, IReadOnlyList<IReadOnlySet<long>>? TupleInodes, bool WithBind = false);

    /// <summary>Acquisition and model: sysctls, then sockets through the first source that reads them.</summary>
    internal static Acquired Acquire(ReadingSettings reading, NamespaceView view, Action<string>? progress, OpenOnce<BpfReader> bpf, string? namespaceName = null)
    {
        // Which namespace this is, said at -v: the calling thread's own (entered, or never left).
        var inode = view.IsLiveKernel ? NamespaceFinder.Inode("/proc/thread-self/ns/net") : null;
        var which = inode is { } i ? $"network namespace read: net:[{i}] ({namespaceName ?? "this check's own"})" : null;
        var clock = Stopwatch.StartNew();
        var sysctls = new SysctlReader(view.Root, progress, view.TablesDirectory);
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
        return new Acquired(usage, chain, diagnostics, which);
    }

    /// <summary>Evaluation: the thresholds applied to what was read.</summary>
    private static NamespaceReading Evaluate(CheckSettings settings, Acquired read, string? name = null)
    {
        var evaluation = PortEvaluation.Evaluate(read.Usage, settings.Thresholds);
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

        return new NamespaceReading(new NamespaceResult(name, read.Usage, evaluation, how), inodes, withBind);
    }

    private static (NamespaceReading Shown, NamespaceOverview? Overview) AcrossNamespaces(CheckSettings settings, NamespaceChoice choice, Progress progress, Stopwatch clock, OpenOnce<BpfReader> bpf)
    {
        if (!choice.All)
        {
            NetworkNamespace target = choice.Pid is { } pid ? NamespaceFinder.ByPid(pid) : NamespaceFinder.ByNameOrPath(choice.NetnsBytes ?? System.Text.Encoding.UTF8.GetBytes(choice.Netns!));
            return InNamespaces(settings, [target], progress, clock, bpf, all: false);
        }

        // Without the privilege to find and enter other namespaces, every one but this check's own
        // would be "not checked": an answer about next to nothing. Said at once, with the fix.
        if (!Credentials.HasEffective(Credentials.CapSysAdmin) || !Credentials.HasEffective(Credentials.CapSysPtrace))
        {
            throw new CheckException("--all-namespaces needs root (CAP_SYS_ADMIN to enter namespaces, CAP_SYS_PTRACE to find them), "
                + "this process has not: run it through sudo with the shipped rule (icinga/sudoers), or check this namespace alone without --all-namespaces");
        }

        var (found, unseen) = NamespaceFinder.FindAll();
        return InNamespaces(settings, found, progress, clock, bpf, all: true, [.. unseen.Select(s => $"{s.What} ({s.Why})")]);
    }

    private static (NamespaceReading Shown, NamespaceOverview? Overview) InNamespaces(CheckSettings settings, IReadOnlyList<NetworkNamespace> targets, Progress progress, Stopwatch clock, OpenOnce<BpfReader> bpf, bool all, List<string>? unseen = null)
    {
        var skipped = unseen ?? [];

        // Read by a pool of threads, one per CPU: every namespace's reading walks the same
        // host-wide hashes, so K namespaces cost K walks, shared among the cores. Each must be done
        // before the check's own timeout, with a little time left to answer: one that is not is
        // listed as skipped, and the others still count. Sockets and sysctls are read through this
        // host's /proc (the entered thread's own files below it); --processes walks the given tree.
        var finishBy = settings.Timeout - (settings.Timeout / 10);
        using var root = new ProcRoot(ProcRootOfEnteredThreads);
        var runs = NamespaceRunner.RunAll(targets, NamespaceFinder.OwnInode(), finishBy - clock.Elapsed, NamespaceRunner.DefaultThreads, (target, tables) =>
        {
            progress.Report($"namespace {target.Name}");
            try
            {
                var read = Evaluate(settings, Acquire(settings.Reading, new NamespaceView(root, tables), progress.Report, bpf, target.Name), target.Name);
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

        var ordered = Precedence.WorstFirst(read, r => r.Result.Evaluation.State, r => r.Result.Usage.HeadlinePercent);
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

    /// <summary>The kernel's own /proc of this host, where an entered thread finds its tables (thread-self/net) and sysctls.</summary>
    private const string ProcRootOfEnteredThreads = "/proc";
}

/// <summary>Where the check is, for the message of a timeout.</summary>
public sealed class Progress
{
    private string _step = "starting";
    private Progress? _following;

    public string Step => _following?.Step ?? Volatile.Read(ref _step);

    public void Report(string step) => Volatile.Write(ref _step, step);

    /// <summary>From now on, where <paramref name="other"/> is (a reading this check waits for).</summary>
    public void Follow(Progress? other) => _following = other;
}

/// <summary>
/// A reading of this namespace started before the settings were known (<see cref="PortCheck.Prefetch"/>).
/// It only reads; when the settings turn out to ask for another reading, it is dropped.
/// </summary>
public sealed class Prefetch
{
    private readonly ReadingSettings _reading;
    private readonly Progress _progress = new();
    private readonly Worker<PortCheck.Acquired> _worker;

    internal Prefetch(ReadingSettings reading)
    {
        _reading = reading;
        _worker = Worker<PortCheck.Acquired>.Start("early scan", () =>
        {
            using var root = new ProcRoot(reading.ProcRoot);
            return PortCheck.Acquire(reading, new NamespaceView(root), _progress.Report, Bpf);
        });
    }

    /// <summary>The BPF reader this reading opens, handed to the run (which closes it) whether or not the reading fits.</summary>
    internal OpenOnce<BpfReader> Bpf { get; } = BpfSource.NewReader();

    /// <summary>
    /// Whether this reading is what <paramref name="wanted"/> asks for: the same settings, or a
    /// <c>--source</c> that auto tried first and that answered. While it is used,
    /// <paramref name="progress"/> follows it.
    /// </summary>
    internal bool Fits(ReadingSettings wanted, Progress progress)
    {
        progress.Follow(_progress);
        var fits = wanted == _reading
            || (wanted.Source != SourceChoice.Auto && wanted with { Source = _reading.Source } == _reading
                && _reading.Source == SourceChoice.Auto && _worker.Result.Chain.Notes.Count == 1
                && _worker.Result.Chain.Source.Name == PortCheck.SourceOrder(wanted.Source, Bpf)[0].Name);
        if (!fits)
        {
            progress.Follow(null);
        }

        return fits;
    }

    internal PortCheck.Acquired Result => _worker.Result;
}
