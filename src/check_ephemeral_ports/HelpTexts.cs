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

    public static readonly string[] After =
    [
        "",
        "Thresholds: [@]start:end, inclusive; '~' is minus infinity, an empty end plus infinity.",
        "  70 alerts above 70, ~:70 likewise, 10: below 10, 10:20 outside, @10:20 inside. '%' may follow a number.",
        "",
        "Perfdata: tcp_busiest_pct, tcp_busiest_used, tcp_ports_in_use, tcp_time_wait, tcp_tuples,",
        "  tcp_bind_busiest_pct and tcp_bind_busiest_used (bind(addr, 0), BPF reading, where connections",
        "  took their port by bind() before connect()), udp_used_pct, udp_used, capacity (ports per",
        "  TCP tuple); with --all-namespaces also",
        "  namespaces, namespaces_warning, namespaces_critical, namespaces_skipped. See README.md.",
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
}
