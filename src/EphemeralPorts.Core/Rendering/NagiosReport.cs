using EphemeralPorts.Check;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>
/// The plugin's text: the status line (<see cref="Headline"/>) and the detail lines, which fit
/// an NRPE v2 packet unless <c>-v</c> asks for more.
/// </summary>
public static class NagiosReport
{
    private const int ListedExclusivePorts = 5;

    /// <summary>The default output must fit an NRPE v2 packet (1023 bytes); -v lifts the limit.</summary>
    public const int DefaultOutputBudget = 1000;

    public static string Render(CheckReport report, int verbosity)
    {
        var statusLine = NagiosText.StatusLine(report.State, Headline.Summary(report), Headline.PerfData(report));
        var details = Details(report, verbosity);
        if (verbosity == 0)
        {
            FitBudget(details, DefaultOutputBudget - Bytes(statusLine));
        }

        return NagiosText.Render(statusLine, details.Select(d => d.Text));
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

    private static List<Detail> Details(CheckReport report, int verbosity)
    {
        var (_, usage, evaluation, reading) = report.Shown;
        var settings = usage.Settings;
        var lines = new List<Detail>();
        if (report.Namespaces is { } all)
        {
            lines.Add(new($"namespaces, worst first ({all.Checked.Count} checked):", 0));
            var rank = 0;
            foreach (var ns in all.Checked.Take(verbosity >= 1 ? all.Checked.Count : 10))
            {
                lines.Add(new($"  {ns.Name}: {ns.Evaluation.State.Label()} {Numbers.Format(ns.Evaluation.Percent)}%", rank++ < 5 ? 0 : 3));
            }

            lines.Add(new($"details of the worst, namespace {report.Shown.Name}:", 1));
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
                var limit = verbosity >= 1 ? 20 : ListedExclusivePorts;
                var listed = string.Join(", ", tcp.Exclusive.Take(limit).Select(e => $"{e.Address.WithPort(e.Port)} {TcpState.Name(e.State)}"));
                var more = tcp.Exclusive.Count > limit ? $" and {tcp.Exclusive.Count - limit} more" : string.Empty;
                lines.Add(new($"listeners in the range (each costs every destination a port): {listed}{more}", 2));
            }

            if (report.Top > 0 && tcp.Tuples.Count > 0)
            {
                lines.Add(new($"top destinations (source -> destination:port used/capacity), {tcp.Tuples.Count} in all:", 1));
                var index = 0;
                foreach (var tuple in tcp.Tuples.Take(report.Top))
                {
                    var timeWait = tuple.TimeWait > 0 ? $", TIME_WAIT {tuple.TimeWait} ({tuple.ReusableTimeWait} reusable)" : string.Empty;
                    var capacity = tcp.CapacityOf(tuple);
                    lines.Add(new($"  {tuple} {tuple.Used}/{capacity} ({Numbers.Format(Numbers.Percent(tuple.Used, capacity))}%){timeWait}", index == 0 ? 1 : 3));
                    if (report.Processes?.ByTuple is { } holders && index < holders.Count)
                    {
                        var who = holders[index].Count == 0
                            ? report.Processes.NoneFound
                            : string.Join(", ", holders[index].Take(3).Select(h => $"pid {h.Pid} ({h.Command}) {h.Sockets}"));
                        lines.Add(new($"    held by {who}", index == 0 ? 1 : 3));
                    }

                    index++;
                }
            }

            if (tcp.Bind?.Busiest is { } bound && report.Processes?.Bind is { } bindHolders)
            {
                var who = bindHolders.Count == 0
                    ? report.Processes.NoneFound
                    : string.Join(", ", bindHolders.Take(3).Select(h => $"pid {h.Pid} ({h.Command}) {h.Sockets}"));
                lines.Add(new($"bind({bound.Address}, 0): the connections that took their port by bind() are held by {who}", 1));
            }

            var states = tcp.StateCounts.Count == 0
                ? "none"
                : string.Join(", ", tcp.StateCounts.Select(s => $"{TcpState.Name(s.Key)} {s.Value}"));
            lines.Add(new($"TCP: {Count(tcp.StateCounts.Values.Sum(), "socket")} on {tcp.PortsInUse} ports of the range ({states}), {tcp.ReusableTimeWait} of {tcp.TimeWait} TIME_WAIT reusable", 4));
        }

        if (report.Processes?.HiddenBy is { } hidden)
        {
            lines.Add(new($"processes: {hidden}, other users' processes are hidden from this user: their sockets are not attributed (run as root, or in the mount's gid= group)", 0));
        }

        if (report.Processes is { Unreadable: > 0 } processes)
        {
            lines.Add(new($"processes: the open files of {processes.Unreadable} processes could not be read (other users', needs root): their sockets are not attributed", 0));
        }

        if (usage.Udp is { } udp)
        {
            lines.Add(new($"UDP: {Count(udp.Sockets, "socket")} on {udp.Used} of {udp.Capacity} ports", 4));
        }

        foreach (var kind in Kinds.ExhaustionKinds.All)
        {
            lines.AddRange(kind.Details(report.Shown.Readings, verbosity).Select(d => new Detail(d.Text, d.Expendable)));
        }

        if (verbosity >= 1 && settings.RangeSizeIsOdd && tcp is not null)
        {
            lines.Add(new($"odd-sized range: {settings.Range.Size} ports; __inet_hash_connect() scans {settings.Range.Size - 1} of them, one parity then the other, and never offers one end port ({settings.Range.Low} or {settings.Range.High}, by a per-boot hash) to some destinations: each is guaranteed {tcp.Capacity} ports, and that is what the figures count against", 0));
        }

        if (verbosity >= 1)
        {
            lines.Add(new($"sysctls: tcp_tw_reuse={settings.TwReuse} ({TwReuseMeaning(settings.TwReuse)}), tcp_tw_reuse_delay={settings.TwReuseDelayMs} ms{(settings.TwReuseDelayFromSysctl ? string.Empty : " (kernel default)")}, tcp_timestamps={settings.Timestamps}, tcp_fin_timeout={settings.FinTimeoutSeconds} s, reserved={(settings.Reserved.Count == 0 ? "none" : settings.Reserved.ToString())}", 0));
        }

        if (verbosity >= 1)
        {
            lines.AddRange(reading.Notes.Select(n => new Detail(n, 0)));
        }

        if (verbosity >= 2 && reading.BlindSpots.Count > 0)
        {
            lines.Add(new($"not visible: {string.Join(", ", reading.BlindSpots)}", 0));
        }

        lines.AddRange(evaluation.Advice.Select(a => new Detail("advice: " + a, 1)));
        if (evaluation.RunbookSection is { } runbook)
        {
            // The first line to go when the output must fit 1 KB: -v always has it.
            lines.Add(new($"runbook: {runbook}", 5));
        }
        if (verbosity >= 3)
        {
            lines.AddRange(reading.Diagnostics.Select(d => new Detail(d, 0)));
        }

        return lines;
    }

    internal static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private static string TwReuseMeaning(int value) => value switch
    {
        0 => "never reused",
        1 => "reused",
        _ => "reused on loopback only",
    };
}
