using EphemeralPorts.Metrics;

namespace EphemeralPorts.Cli;

/// <summary>The prose of --help around the generated option list.</summary>
internal static class HelpTexts
{
    public static string[] Before =>
    [
        "",
        "Warns before connect() fails with EADDRNOTAVAIL (\"Cannot assign requested address\").",
        "Linux gives each (source address, destination address, destination port) tuple its own",
        "set of ephemeral ports from net.ipv4.ip_local_port_range, less the reserved ports and the",
        "ports held by listeners or bind() inside the range. The check reads the namespace's sysctls",
        "and socket tables, finds the busiest tuple and alerts on its share of that capacity, and on",
        "the share of the range held by UDP sockets (one port per socket, for every destination).",
        "",
        OptionTable.Usage(ArgumentParser.ProgramName, 92),
        "",
    ];

    public static string[] After =>
    [
        "",
        "Thresholds: [@]start:end, inclusive; '~' is minus infinity, an empty end plus infinity.",
        "  70 alerts above 70, ~:70 likewise, 10: below 10, 10:20 outside, @10:20 inside. '%' may follow a number.",
        "",
        .. Wrap("Perfdata: " + PerfdataList() + ". See README.md."),
        "",
        "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, unreadable or malformed",
        "  /proc files, timeout; also after --help and --version, as the Monitoring Plugins do).",
        "",
        "Cannot be seen, so not counted, through sock_diag (netlink) and /proc: a port taken by bind()",
        "  before connect() (held for every destination), an accepted connection that outlived its",
        "  in-range listener, a TIME_WAIT's own negotiated timestamps (tcp_timestamps stands in) and",
        "  per-socket IP_LOCAL_PORT_RANGE; /proc also misses sockets bound but idle. BPF (--source bpf,",
        "  root) sees all of these. -vv says what the reading used cannot see. An odd-sized range may",
        "  run out one port early.",
    ];

    /// <summary>
    /// The perfdata labels, from the metric catalogue in perfdata order: a kind's notes after its
    /// labels, and the labels only an option brings after "with OPTION also".
    /// </summary>
    internal static string PerfdataList()
    {
        var labels = MetricCatalogue.Perfdata.DistinctBy(m => m.Perfdata!.Label).ToList();
        var runs = new List<(MetricKind Kind, List<Metric> Metrics)>();
        foreach (var metric in labels)
        {
            if (runs.Count == 0 || runs[^1].Kind != metric.Kind)
            {
                runs.Add((metric.Kind, []));
            }

            runs[^1].Metrics.Add(metric);
        }

        var text = new System.Text.StringBuilder();
        foreach (var (kind, metrics) in runs)
        {
            var names = metrics.Select(m => m.Perfdata!.HelpNote is { } note ? $"{m.Perfdata.Label} ({note})" : m.Perfdata.Label).ToList();
            var list = kind.HelpNote is { } kindNote
                ? $"{string.Join(", ", names.Take(names.Count - 1))} and {names[^1]} ({kindNote})"
                : string.Join(", ", names);
            if (kind.Option is { } option)
            {
                text.Append("; with ").Append(option).Append(" also ").Append(list);
            }
            else
            {
                text.Append(text.Length > 0 ? ", " : string.Empty).Append(list);
            }
        }

        return text.ToString();
    }

    /// <summary>A paragraph in lines of at most <see cref="Width"/> characters, the later ones indented by two.</summary>
    private static IEnumerable<string> Wrap(string paragraph)
    {
        var line = new System.Text.StringBuilder();
        foreach (var word in paragraph.Split(' '))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > Width)
            {
                yield return line.ToString();
                line.Clear().Append("  ").Append(word);
            }
            else
            {
                line.Append(line.Length > 0 ? " " : string.Empty).Append(word);
            }
        }

        yield return line.ToString();
    }

    private const int Width = 95;
}
