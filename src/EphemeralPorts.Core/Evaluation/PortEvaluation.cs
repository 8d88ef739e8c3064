using EphemeralPorts.Kinds;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Evaluation;

/// <summary>
/// One namespace evaluated (<see cref="ExhaustionKinds.Evaluate"/>): the worst state of the
/// kinds' verdicts, the verdicts themselves (the status line's parts, leading kinds first), the
/// advice of the kinds that alert, and the runbook's section of the worst one.
/// </summary>
public sealed record PortEvaluation(ServiceState State, IReadOnlyList<KindVerdict> Verdicts, IReadOnlyList<string> Advice)
{
    /// <summary>The runbook's section for the worst part, where something alerts.</summary>
    public string? RunbookSection { get; init; }

    /// <summary>
    /// The percentage behind the namespace's state: the highest of its kinds' (a namespace whose
    /// NAT tuple or conntrack table is full is at 100% even where no socket of its own holds a port).
    /// </summary>
    public double Percent => Verdicts.Count == 0 ? 0 : Verdicts.Max(v => v.Percent);

    /// <summary>The state <paramref name="kind"/> concluded; OK where it had nothing to say.</summary>
    public ServiceState StateOf(IExhaustionKind kind) => Verdicts.FirstOrDefault(v => ReferenceEquals(v.Kind, kind))?.State ?? ServiceState.Ok;
}
