using EphemeralPorts.Kinds.BindAddress;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Kinds.TcpTuples;
using EphemeralPorts.Kinds.Udp;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds;

/// <summary>The kinds of exhaustion the check knows, and how their verdicts make one namespace's evaluation.</summary>
public static class ExhaustionKinds
{
    /// <summary>
    /// Every kind, registered once, in the catalogue's order of their figures (the published
    /// Prometheus order); a kind that <see cref="IExhaustionKind.Leads"/> comes first on the
    /// status line and in the advice.
    /// </summary>
    public static readonly IReadOnlyList<IExhaustionKind> All = [TcpTupleKind.Instance, BindKind.Instance, UdpKind.Instance, NatTupleKind.Instance, ConntrackTableKind.Instance];

    /// <summary>The resources the kinds read besides the sockets, each once.</summary>
    public static IEnumerable<IResource> Resources => All.Select(k => k.Resource).OfType<IResource>().Distinct();

    /// <summary>The runbook as the packages install it (docs/runbook.md in the repository).</summary>
    public const string Runbook = "/usr/share/doc/check-ephemeral-ports/runbook.md";

    /// <summary>
    /// Every kind's verdict on one namespace; the state is the worst of them. Advice is given only
    /// by kinds that alert; the runbook link names the section of the worst one.
    /// </summary>
    public static Evaluation.PortEvaluation Evaluate(Readings readings, Thresholds thresholds)
    {
        var inOrder = All.Select(k => k.Evaluate(readings, thresholds)).OfType<KindVerdict>().ToList();
        var verdicts = inOrder.OrderBy(v => v.Kind.Leads ? 0 : 1).ToList();
        var state = verdicts.Aggregate(ServiceState.Ok, (worst, v) => ServiceStates.Worst(worst, v.State));
        var advice = state == ServiceState.Ok ? [] : verdicts.Where(v => v.State != ServiceState.Ok).SelectMany(v => v.Advice).ToList();
        string? runbook = null;
        if (state is ServiceState.Warning or ServiceState.Critical)
        {
            // Where the on-call engineer reads on: the runbook's section of the worst part, the
            // first registered among equals (OrderByDescending is stable).
            var worst = inOrder.OrderByDescending(v => ServiceStates.Severity(v.State)).First();
            runbook = $"{Runbook}#{worst.Kind.Id}-{(worst.State == ServiceState.Critical ? "critical" : "warning")}";
        }

        return new Evaluation.PortEvaluation(state, verdicts, advice) { RunbookSection = runbook };
    }

}
