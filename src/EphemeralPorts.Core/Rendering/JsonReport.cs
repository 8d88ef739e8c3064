using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using EphemeralPorts.Check;
using EphemeralPorts.Kinds.BindAddress;
using EphemeralPorts.Kinds.TcpTuples;
using EphemeralPorts.Kinds.Udp;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>
/// <c>--format json</c>: one JSON document for Zabbix (a master item with dependent items by
/// JSONPath). The state travels inside, because Zabbix discards exit codes. Besides our own
/// figures it carries the fields of the common "system-ports" check (portMin ... healthScore),
/// computed from this model, so that existing parsers keep working.
/// </summary>
public static class JsonReport
{
    public static string Render(CheckReport report)
    {
        var (_, usage, evaluation, _) = report.Shown;
        var thresholds = report.Thresholds;
        var settings = usage.Settings;
        var tcp = usage.Tcp;
        var udp = usage.Udp;
        var headline = usage.HeadlinePercent;
        var tuples = tcp?.Tuples.Take(report.Top).ToList() ?? [];
        var document = new JsonDocumentModel
        {
            State = report.State.Label(),
            ExitCode = (int)report.State,
            Summary = NagiosText.Prefix(report.State) + Headline.Summary(report),
            Version = Version,
            Range = new JsonRange(settings.Range.Low, settings.Range.High, settings.Range.Size),
            ReservedPorts = settings.Reserved.ToString(),
            ReservedInRange = usage.ReservedInRange,
            Sysctls = new JsonSysctls(settings.TwReuse, settings.TwReuseDelayMs, settings.Timestamps, settings.FinTimeoutSeconds),
            Thresholds = new JsonThresholds(thresholds.Warning.ToString(), thresholds.Critical.ToString()),
            Tcp = tcp is null ? null : new JsonTcp(
                evaluation.StateOf(TcpTupleKind.Instance).Label(),
                Round(tcp.BusiestPercent),
                tcp.BusiestUsed,
                tcp.Capacity,
                tcp.PortsInUse,
                tcp.TimeWait,
                tcp.ReusableTimeWait,
                tcp.TuplesInUse,
                tcp.StateCounts.ToDictionary(s => TcpState.Name(s.Key), s => s.Value),
                tcp.Exclusive.Select(e => new JsonListener(e.Address.ToString(), e.Port, TcpState.Name(e.State))).ToList())
            {
                BindBeforeConnect = tcp.Bind is { } bind ? new JsonBind(
                    evaluation.StateOf(BindKind.Instance).Label(),
                    Round(bind.BusiestPercent),
                    bind.Addresses.Take(report.Top).Select((a, i) => new JsonBindAddress(a.Address.ToString(), a.Used, a.Capacity, a.Free, Round(a.Percent), a.BoundConnections)
                    {
                        Holders = i == 0 && report.Processes?.Bind is { } holders ? holders.Select(x => new JsonHolder(x.Pid, x.Command, x.Sockets)).ToList() : null,
                    }).ToList()) : null,
            },
            Udp = udp is null ? null : new JsonUdp(evaluation.StateOf(UdpKind.Instance).Label(), Round(udp.Percent), udp.Used, udp.Capacity, udp.Sockets),
            TopDestinations = tuples.Select((t, i) => new JsonTuple(
                t.Tuple.Source.ToString(),
                t.Tuple.Destination.ToString(),
                t.Tuple.DestinationPort,
                t.Used,
                tcp!.CapacityOf(t),
                Round(Numbers.Percent(t.Used, tcp.CapacityOf(t))),
                t.TimeWait,
                t.ReusableTimeWait,
                report.Processes?.ByTuple is { } h && i < h.Count ? h[i].Select(x => new JsonHolder(x.Pid, x.Command, x.Sockets)).ToList() : null)).ToList(),
            Namespace = report.Shown.Name,
            Namespaces = report.Namespaces?.Checked.Select(n => new JsonNamespace(n.Name!, n.Evaluation.State.Label(), Round(n.Evaluation.Percent), Headline.Sentence(n))).ToList(),
            Skipped = report.Namespaces?.Skipped is { Count: > 0 } skipped ? skipped
                : report.Processes is { HiddenBy: { } hidden } ? [$"other users' processes are hidden ({hidden})"]
                : report.Processes is { Unreadable: > 0 } processes ? [$"the open files of {processes.Unreadable} processes could not be read"] : null,
            Perfdata = Headline.PerfData(report).ToDictionary(p => p.Label, p => Round(p.Value)),
            Advice = evaluation.Advice,
            Runbook = evaluation.RunbookSection,
            Kinds = KindSections(report),

            // The "system-ports" fields. usedPercent is our headline (the worse of the busiest TCP
            // tuple and UDP), usedPorts the ports behind it; totalPorts is the size of the range.
            PortMin = settings.Range.Low,
            PortMax = settings.Range.High,
            TotalPorts = settings.Range.Size,
            UsedPorts = (udp is not null && udp.Percent > (tcp?.BusiestPercent ?? -1)) ? udp.Used : tcp?.BusiestUsed ?? 0,
            UsedPercent = Round(headline),
            WarningThreshold = Threshold(thresholds.Warning),
            CriticalThreshold = Threshold(thresholds.Critical),
            HealthScore = Round(100 - headline),
            TopConsumers = tuples.Select(t => new JsonConsumer(
                t.Tuple.Source.ToKernelHex(),
                t.Tuple.Source.ToString(),
                t.Tuple.Destination.WithPort(t.Tuple.DestinationPort),
                t.Used)).ToList(),
        };
        return JsonSerializer.Serialize(document, Context.JsonDocumentModel) + "\n";
    }

    /// <summary>A failure as JSON, so that Zabbix's dependent items still find <c>$.state</c>.</summary>
    public static string RenderFailure(ServiceState state, string message) =>
        JsonSerializer.Serialize(
            new JsonDocumentModel { State = state.Label(), ExitCode = (int)state, Summary = NagiosText.Prefix(state) + message, Version = Version },
            Context.JsonDocumentModel) + "\n";

    // Messages quote with ' and show "->": keep them readable instead of \u0027-escaped. The
    // document goes to a monitoring agent, never into HTML.
    private static readonly JsonReportContext Context = new(new JsonSerializerOptions(JsonReportContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private static string Version => ProductInfo.Version;

    private static Dictionary<string, JsonElement>? KindSections(CheckReport report)
    {
        var sections = new Dictionary<string, JsonElement>();
        foreach (var kind in EphemeralPorts.Kinds.ExhaustionKinds.All)
        {
            if (kind.Json(report.Shown.Readings, report.Top) is { } section)
            {
                using var parsed = JsonDocument.Parse(section.ToJsonString());
                sections[kind.JsonKey] = parsed.RootElement.Clone();
            }
        }

        return sections.Count > 0 ? sections : null;
    }

    private static double Round(double value) => Math.Round(value, 2);

    private static double? Threshold(NagiosRange range) =>
        range.PerfDataValue.Length > 0 ? range.End : null;
}

#pragma warning disable SA1402, CA1002 // small DTOs belong with their serializer
public sealed class JsonDocumentModel
{
    public required string State { get; init; }

    public int ExitCode { get; init; }

    public required string Summary { get; init; }

    public required string Version { get; init; }

    public JsonRange? Range { get; init; }

    public string? ReservedPorts { get; init; }

    public int? ReservedInRange { get; init; }

    public JsonSysctls? Sysctls { get; init; }

    public JsonThresholds? Thresholds { get; init; }

    public JsonTcp? Tcp { get; init; }

    public JsonUdp? Udp { get; init; }

    public IReadOnlyList<JsonTuple>? TopDestinations { get; init; }

    public string? Namespace { get; init; }

    public IReadOnlyList<JsonNamespace>? Namespaces { get; init; }

    public IReadOnlyList<string>? Skipped { get; init; }

    public IReadOnlyDictionary<string, double>? Perfdata { get; init; }

    public IReadOnlyList<string>? Advice { get; init; }

    /// <summary>The runbook's section for what alerts (docs/runbook.md, as installed); absent when nothing does.</summary>
    public string? Runbook { get; init; }

    /// <summary>The sections of the kinds that write their own (<see cref="Kinds.IExhaustionKind.Json"/>), each under its id, after the fields above.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Kinds { get; set; }

    public int? PortMin { get; init; }

    public int? PortMax { get; init; }

    public int? TotalPorts { get; init; }

    public int? UsedPorts { get; init; }

    public double? UsedPercent { get; init; }

    public double? WarningThreshold { get; init; }

    public double? CriticalThreshold { get; init; }

    public double? HealthScore { get; init; }

    public IReadOnlyList<JsonConsumer>? TopConsumers { get; init; }
}

public sealed record JsonRange(int Low, int High, int Size);

public sealed record JsonSysctls(int TcpTwReuse, int TcpTwReuseDelayMs, int TcpTimestamps, int TcpFinTimeout);

public sealed record JsonThresholds(string Warning, string Critical);

public sealed record JsonListener(string Address, int Port, string State);

public sealed record JsonTcp(
    string State,
    double BusiestPct,
    int BusiestUsed,
    int Capacity,
    int PortsInUse,
    int TimeWait,
    int TimeWaitReusable,
    int Tuples,
    IReadOnlyDictionary<string, int> States,
    IReadOnlyList<JsonListener> ListenersInRange)
{
    /// <summary>bind(addr, 0) per local address; absent where the reading cannot tell bind()'s ports from connect()'s.</summary>
    public JsonBind? BindBeforeConnect { get; init; }
}

/// <summary>The bind(addr, 0) figure: the busiest address's percentage and the addresses, busiest first.</summary>
public sealed record JsonBind(string State, double BusiestPct, IReadOnlyList<JsonBindAddress> Addresses);

public sealed record JsonBindAddress(string Address, int Used, int Capacity, int Free, double Percent, int BoundConnections)
{
    /// <summary>With --processes, for the busiest address: who holds those connections.</summary>
    public IReadOnlyList<JsonHolder>? Holders { get; init; }
}

public sealed record JsonUdp(string State, double UsedPct, int Used, int Capacity, int Sockets);

public sealed record JsonTuple(string Source, string Destination, int Port, int Used, int Capacity, double Percent, int TimeWait, int TimeWaitReusable, IReadOnlyList<JsonHolder>? Holders);

public sealed record JsonHolder(int Pid, string Command, int Sockets);

public sealed record JsonNamespace(string Name, string State, double Percent, string Summary);

/// <summary>A "system-ports" top consumer: the kernel's hex source address and a readable one.</summary>
public sealed record JsonConsumer(string LocalAddr, string Address, string Destination, int Count);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(JsonDocumentModel))]
internal sealed partial class JsonReportContext : JsonSerializerContext;
