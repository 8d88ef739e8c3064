using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;

namespace EphemeralPorts.Rendering;

/// <summary>
/// Turns the model's answer into the plugin's result: a summary an operator can act on, the
/// perfdata labels (a stable API: graphs depend on them) and the detail lines.
/// </summary>
public static class NagiosReport
{
    private const int ListedExclusivePorts = 5;

    /// <summary>The default output must fit an NRPE v2 packet (1023 bytes); -v lifts the limit.</summary>
    public const int DefaultOutputBudget = 1000;

    public static CheckResult Build(CheckReport report)
    {
        var result = new CheckResult(report.Evaluation.State, Summary(report), PerfData(report), []);
        var details = Details(report);
        if (report.Options.Verbosity == 0)
        {
            FitBudget(details, DefaultOutputBudget - Bytes(NagiosText.Render(result)));
        }

        return result with { Details = details.Select(d => d.Text).ToList() };
    }

    /// <summary>A detail line and how readily it goes when the output is too long (higher goes first).</summary>
    private sealed record Detail(string Text, int Expendable);

    // The status line and perfdata are never cut. Past the budget, the most expendable lines go
    // first, the last of them first, and a closing line says how many went.
    private static void FitBudget(List<Detail> details, int budget)
    {
        const string MoreLine = "(99 more detail lines with -v)";
        var dropped = 0;
        while (details.Sum(d => Bytes(d.Text) + 1) + (dropped > 0 ? MoreLine.Length + 1 : 0) > budget && details.Count > 0)
        {
            var worst = details.Max(d => d.Expendable);
            details.RemoveAt(details.FindLastIndex(d => d.Expendable == worst));
            dropped++;
        }

        if (dropped > 0)
        {
            details.Add(new Detail($"({dropped} more detail lines with -v)", 0));
        }
    }

    // NRPE counts bytes: a process or container name may not be ASCII.
    private static int Bytes(string text) => System.Text.Encoding.UTF8.GetByteCount(text);

    private static string Summary(CheckReport report)
    {
        var text = Sentence(report.Usage, report.Evaluation);
        if (report.Namespace is { } name)
        {
            text = $"namespace {name}: {text}";
        }

        if (report.Namespaces is { } all)
        {
            // What was not seen is said on the status line: the state speaks only for what was.
            var unseen = all.Skipped.Count > 0 ? $" - NOT checked: {string.Join(", ", all.Skipped)}" : string.Empty;
            text += $" ({Count(all.Checked.Count, "namespace")} checked, {all.Count(ServiceState.Critical)} critical, {all.Count(ServiceState.Warning)} warning{unseen})";
        }

        return text;
    }

    /// <summary>The one sentence about one namespace's TCP and UDP usage.</summary>
    /// <remarks>Also the summary of a namespace in the JSON overview.</remarks>
    public static string Sentence(PortUsage usage, PortEvaluation evaluation)
    {
        var parts = new List<(ServiceState State, string Text)>();
        if (usage.Tcp is { } tcp)
        {
            parts.Add((evaluation.TcpState, TcpSentence(usage, tcp)));
        }

        if (usage.Udp is { } udp)
        {
            parts.Add((evaluation.UdpState, $"UDP uses {udp.Used} of {udp.Capacity} ports ({Numbers.Format(udp.Percent)}%){(udp.Used >= udp.Capacity ? ", new UDP sockets fail now" : string.Empty)}"));
        }

        // The part that alerts comes first: it is what the operator has to read at 3 am. No ';' in
        // free text: Nagios 4 rewrites it to ':'.
        return string.Join(" - ", parts.OrderByDescending(p => p.State == evaluation.State).Select(p => p.Text));
    }

    private static string TcpSentence(PortUsage usage, TcpUsage tcp)
    {
        if (tcp.Busiest is not { } busiest)
        {
            return tcp.Capacity > 0
                ? $"no outbound TCP connection holds a port of the range {usage.Settings.Range}, {tcp.Capacity} ports free per destination"
                : $"no port of the range {usage.Settings.Range} is left for outbound TCP connections";
        }

        var text = $"busiest TCP tuple {busiest.Tuple} uses {busiest.Used} of {tcp.Capacity} ports ({Numbers.Format(tcp.BusiestPercent)}%)";
        return busiest.Used >= tcp.Capacity ? text + ", new connections to it fail now" : text;
    }

    private static List<PerfDatum> PerfData(CheckReport report)
    {
        var (usage, _, thresholds, _) = report;
        var warn = thresholds.Warning.PerfDataValue;
        var crit = thresholds.Critical.PerfDataValue;
        var perf = new List<PerfDatum>();
        if (usage.Tcp is { } tcp)
        {
            perf.Add(new PerfDatum("tcp_busiest_pct", tcp.BusiestPercent, "%", warn, crit, 0, 100));
            perf.Add(new PerfDatum("tcp_busiest_used", tcp.BusiestUsed, Min: 0, Max: tcp.Capacity));
            perf.Add(new PerfDatum("tcp_ports_in_use", tcp.PortsInUse, Min: 0, Max: usage.Settings.Range.Size));
            perf.Add(new PerfDatum("tcp_time_wait", tcp.TimeWait, Min: 0));
            perf.Add(new PerfDatum("tcp_tuples", tcp.TuplesInUse, Min: 0));
        }

        if (usage.Udp is { } udp)
        {
            perf.Add(new PerfDatum("udp_used_pct", udp.Percent, "%", warn, crit, 0, 100));
            perf.Add(new PerfDatum("udp_used", udp.Used, Min: 0, Max: udp.Capacity));
        }

        perf.Add(new PerfDatum("capacity", usage.Tcp?.Capacity ?? usage.Udp!.Capacity, Min: 0));
        if (report.Namespaces is { } all)
        {
            perf.Add(new PerfDatum("namespaces", all.Checked.Count, Min: 0));
            perf.Add(new PerfDatum("namespaces_warning", all.Count(ServiceState.Warning), Min: 0));
            perf.Add(new PerfDatum("namespaces_critical", all.Count(ServiceState.Critical), Min: 0));
            perf.Add(new PerfDatum("namespaces_skipped", all.Skipped.Count, Min: 0));
        }

        return perf;
    }

    private static List<Detail> Details(CheckReport report)
    {
        var (usage, evaluation, _, options) = report;
        var settings = usage.Settings;
        var lines = new List<Detail>();
        if (report.Namespaces is { } all)
        {
            lines.Add(new($"namespaces, worst first ({all.Checked.Count} checked):", 0));
            var rank = 0;
            foreach (var ns in all.Checked.Take(options.Verbosity >= 1 ? all.Checked.Count : 10))
            {
                lines.Add(new($"  {ns.Name}: {ns.State.Label()} {Numbers.Format(ns.Percent)}%", rank++ < 5 ? 0 : 3));
            }

            lines.Add(new($"details of the worst, namespace {report.Namespace}:", 1));
        }

        var tcp = usage.Tcp;
        var range = $"range {settings.Range}: {settings.Range.Size} ports, {usage.ReservedInRange} reserved";
        lines.Add(new(
            tcp is null ? range : $"{range}, {tcp.ExclusivePortCount} held by listeners/bind(), {tcp.Capacity} left per (source, destination, port)",
            0));

        if (tcp is not null)
        {
            if (tcp.Exclusive.Count > 0)
            {
                var limit = options.Verbosity >= 1 ? 20 : ListedExclusivePorts;
                var listed = string.Join(", ", tcp.Exclusive.Take(limit).Select(e => $"{e.Address.WithPort(e.Port)} {TcpState.Name(e.State)}"));
                var more = tcp.Exclusive.Count > limit ? $" and {tcp.Exclusive.Count - limit} more" : string.Empty;
                lines.Add(new($"listeners in the range (each costs every destination a port): {listed}{more}", 2));
            }

            if (options.Top > 0 && tcp.Tuples.Count > 0)
            {
                lines.Add(new($"top destinations (source -> destination:port used/capacity), {tcp.Tuples.Count} in all:", 1));
                var index = 0;
                foreach (var tuple in tcp.Tuples.Take(options.Top))
                {
                    var timeWait = tuple.TimeWait > 0 ? $", TIME_WAIT {tuple.TimeWait} ({tuple.ReusableTimeWait} reusable)" : string.Empty;
                    lines.Add(new($"  {tuple.Tuple} {tuple.Used}/{tcp.Capacity} ({Numbers.Format(Numbers.Percent(tuple.Used, tcp.Capacity))}%){timeWait}", index == 0 ? 1 : 3));
                    if (report.Holders is { } holders && index < holders.Count)
                    {
                        var who = holders[index].Count == 0
                            ? "no process found (TIME_WAIT sockets belong to none)"
                            : string.Join(", ", holders[index].Take(3).Select(h => $"pid {h.Pid} ({h.Command}) {h.Sockets}"));
                        lines.Add(new($"    held by {who}", index == 0 ? 1 : 3));
                    }

                    index++;
                }
            }

            var states = tcp.StateCounts.Count == 0
                ? "none"
                : string.Join(", ", tcp.StateCounts.Select(s => $"{TcpState.Name(s.Key)} {s.Value}"));
            lines.Add(new($"TCP: {Count(tcp.StateCounts.Values.Sum(), "socket")} on {tcp.PortsInUse} ports of the range ({states}), {tcp.ReusableTimeWait} of {tcp.TimeWait} TIME_WAIT reusable", 4));
        }

        if (report.UnreadableProcesses > 0)
        {
            lines.Add(new($"processes: the open files of {report.UnreadableProcesses} processes could not be read (other users', needs root): their sockets are not attributed", 0));
        }

        if (usage.Udp is { } udp)
        {
            lines.Add(new($"UDP: {Count(udp.Sockets, "socket")} on {udp.Used} of {udp.Capacity} ports", 4));
        }

        if (options.Verbosity >= 1)
        {
            lines.Add(new($"sysctls: tcp_tw_reuse={settings.TwReuse} ({TwReuseMeaning(settings.TwReuse)}), tcp_tw_reuse_delay={settings.TwReuseDelayMs} ms{(settings.TwReuseDelayFromSysctl ? string.Empty : " (kernel default)")}, tcp_timestamps={settings.Timestamps}, tcp_fin_timeout={settings.FinTimeoutSeconds} s, reserved={(settings.Reserved.Count == 0 ? "none" : settings.Reserved.ToString())}", 0));
        }

        if (options.Verbosity >= 1 && options.Notes is { } notes)
        {
            lines.AddRange(notes.Select(n => new Detail(n, 0)));
        }

        if (options.Verbosity >= 2 && options.BlindSpots is { } blind)
        {
            lines.Add(new($"not visible: {blind}", 0));
        }

        lines.AddRange(evaluation.Advice.Select(a => new Detail("advice: " + a, 1)));
        if (options.Verbosity >= 3)
        {
            lines.AddRange(options.Diagnostics.Select(d => new Detail(d, 0)));
        }

        return lines;
    }

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private static string TwReuseMeaning(int value) => value switch
    {
        0 => "never reused",
        1 => "reused",
        _ => "reused on loopback only",
    };
}
