using EphemeralPorts.Metrics;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds;

/// <summary>
/// One kind of exhaustion (nagiosplugin's Context over its Resource's metrics): what it reads,
/// the figures it reports, and how one namespace's reading of it is evaluated against the
/// thresholds. A kind is a folder below Kinds/ and a line in <see cref="ExhaustionKinds.All"/>;
/// the pipeline, the catalogue, the status line, the advice and the runbook link take it from there.
/// </summary>
public interface IExhaustionKind
{
    /// <summary>Its name in the runbook's anchors (<c>#ID-warning</c>) and in evaluations.</summary>
    string Id { get; }

    /// <summary>What its figures are grouped as (in <c>--help</c>'s perfdata list and the catalogue).</summary>
    MetricKind Group { get; }

    /// <summary>Every figure it reports, in the order of the Prometheus exposition.</summary>
    IReadOnlyList<Metric> Metrics { get; }

    /// <summary>
    /// What it reads besides the namespace's sockets and sysctls (which every kind is given):
    /// null when that is all it needs. Read once per namespace, shared by the kinds that name it.
    /// </summary>
    IResource? Resource => null;

    /// <summary>
    /// Whether its part of the status line and its advice come before the other kinds' among
    /// equal states: what the operator changes first when both run out.
    /// </summary>
    bool Leads => false;

    /// <summary>Its verdict on one namespace's readings; null where the readings have nothing of it (a protocol not checked).</summary>
    KindVerdict? Evaluate(Readings readings, Thresholds thresholds);

    /// <summary>
    /// Its detail lines in the Nagios text, after the sockets' (those of TCP tuples, bind(addr, 0)
    /// and UDP are the renderer's own, published before kinds were values): each with how
    /// readily it goes when the output must fit 1 KB (0 never, 5 first).
    /// </summary>
    IEnumerable<(string Text, int Expendable)> Details(Readings readings, int verbosity) => [];

    /// <summary>The key of its JSON section: a plain name JSONPath reads without brackets.</summary>
    string JsonKey => Id;

    /// <summary>Its section of the JSON document, under its <see cref="JsonKey"/>; null for none.</summary>
    System.Text.Json.Nodes.JsonNode? Json(Readings readings, int top) => null;

    /// <summary>
    /// The type its section is written from, where the section holds more than the catalogue's
    /// figures (a list Zabbix discovers, say): the published names of the section, which the
    /// templates' paths are held to. Null where the figures are all.
    /// </summary>
    Type? JsonShape => null;
}

/// <summary>
/// What a kind concluded of one namespace: its state, the percentage behind it (for the order of
/// namespaces and parts), its part of the status line, and the advice that follows from it.
/// </summary>
public sealed record KindVerdict(IExhaustionKind Kind, ServiceState State, double Percent, string Sentence, IReadOnlyList<string> Advice);

/// <summary>
/// A reading a kind needs beyond the sockets (the conntrack table, say): read once per namespace
/// through the namespace's view, within the run.
/// </summary>
public interface IResource
{
    /// <summary>Its name, for progress and -vvv.</summary>
    string Name { get; }

    /// <summary>Reads it for one namespace; notes said at -v go to <paramref name="notes"/>.</summary>
    object Read(ResourceRequest request, List<string> notes);
}

/// <summary>Where and what a resource reads: the namespace's view, the settings, progress.</summary>
public sealed record ResourceRequest(Acquisition.NamespaceView View, Check.ReadingSettings Settings, Action<string> Progress);

/// <summary>
/// One namespace's readings: the sockets and sysctls (<see cref="Sockets"/>), and what the
/// registered kinds' resources read.
/// </summary>
public sealed class Readings(PortUsage sockets, IReadOnlyDictionary<IResource, object>? others = null)
{
    public PortUsage Sockets { get; } = sockets;

    /// <summary>What <paramref name="resource"/> read, or null where it was not read.</summary>
    public T? Of<T>(IResource resource)
        where T : class => others is not null && others.TryGetValue(resource, out var value) ? value as T : null;
}
