using EphemeralPorts.Acquisition;
using EphemeralPorts.Evaluation;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Check;

/// <summary>What one check concluded: a report, or a failure that left the state undetermined.</summary>
public abstract record CheckOutcome
{
    public abstract ServiceState State { get; }
}

/// <summary>The check could not say (bad or unreadable input, a refused reading, the timeout).</summary>
public sealed record CheckFailure(ServiceState FailureState, string Message) : CheckOutcome
{
    public override ServiceState State => FailureState;

    /// <summary>The input the message is about, which the caller names its own way (an option); null when none.</summary>
    public Input? About { get; init; }

    /// <summary>The fix in the caller's terms, where there is one.</summary>
    public Remedy? Fix { get; init; }
}

/// <summary>
/// The answer: the namespace shown in detail (the worst one when several were checked), the
/// thresholds behind its evaluation, and with <c>--all-namespaces</c> the overview of all of them.
/// </summary>
public sealed record CheckReport(NamespaceResult Shown, Thresholds Thresholds, int Top) : CheckOutcome
{
    public override ServiceState State => Shown.Evaluation.State;

    /// <summary><c>--all-namespaces</c>: every namespace checked (worst first) and what was skipped.</summary>
    public NamespaceOverview? Namespaces { get; init; }

    /// <summary><c>--processes</c>: who holds the listed tuples' sockets.</summary>
    public ProcessHolders? Processes { get; init; }
}

/// <summary>One namespace: its model, the evaluation of it, and how it was read.</summary>
public sealed record NamespaceResult(string? Name, PortUsage Usage, PortEvaluation Evaluation, ReadingReport Reading)
{
    /// <summary>The namespace's inode, where a namespace was entered or looked up.</summary>
    public ulong? Inode { get; init; }

    /// <summary>The container (12 hex digits) whose process led to it, where known.</summary>
    public string? Container { get; init; }

    /// <summary>The Kubernetes pod UID, where known.</summary>
    public string? Pod { get; init; }

    /// <summary>Everything read of the namespace: the sockets (<see cref="Usage"/>) and what the kinds' resources read.</summary>
    public Kinds.Readings Readings { get => field ?? new Kinds.Readings(Usage); init; }
}

/// <summary>
/// How a namespace was read: notes for <c>-v</c> (the source and any refusal before it), what
/// that source cannot see (<c>-vv</c>), files and timings (<c>-vvv</c>).
/// </summary>
public sealed record ReadingReport(string Source, IReadOnlyList<string> Notes, IReadOnlyList<BlindSpot> BlindSpots, IReadOnlyList<string> Diagnostics);

/// <summary>What <c>--all-namespaces</c> looked at (worst first) and what it could not.</summary>
public sealed record NamespaceOverview(IReadOnlyList<NamespaceResult> Checked, IReadOnlyList<string> Skipped)
{
    public int Count(ServiceState state) => Checked.Count(n => n.Evaluation.State == state);
}

/// <summary>The holders of each listed tuple, in the order of the shown namespace's tuples, and the processes that could not be read.</summary>
public sealed record ProcessHolders(IReadOnlyList<IReadOnlyList<SocketHolder>> ByTuple, int Unreadable)
{
    /// <summary>Who holds the connections of the bind(addr, 0) figure's address, where it exists.</summary>
    public IReadOnlyList<SocketHolder>? Bind { get; init; }

    /// <summary>Why other users' processes were not even listed (hidepid), or null.</summary>
    public string? HiddenBy { get; init; }

    /// <summary>What "no holder" means here, for the detail lines.</summary>
    public string NoneFound => HiddenBy is { } why
        ? $"no process this user can see ({why}: other users' processes are hidden)"
        : "no process found (TIME_WAIT sockets belong to none)";
}
