using CommandLine;

namespace EphemeralPorts.Cli;

/// <summary>
/// The one table of options: CommandLineParser reads its attributes, and so does
/// <see cref="OptionTable"/>, from which the value-taking list, the usage line and the Icinga
/// CheckCommand test are derived. Adding an option here (with its
/// <see cref="PluginOptionAttribute"/>) and binding it in <see cref="SettingsBinder"/> is all
/// it takes; OptionTableTests fail for an option that is only half added. Values stay strings
/// where the plugin has its own syntax (ranges, SECONDS:STATE) so that the binder can say
/// exactly what is wrong. The parser sets every property, defaults from the attributes
/// (<see cref="OptionTable.Defaults"/> does the same without parsing), so no initializer repeats them.
/// Kept whole for Native AOT by the DynamicDependency in <see cref="OptionTable"/>.
/// </summary>
public sealed class Options
{
    [PluginOption(Sample = "60")]
    [Option('w', "warning", Default = "70", MetaValue = "RANGE",
        HelpText = "Warning threshold on the busiest TCP tuple's and on UDP's percentage of usable ports (Monitoring Plugins range syntax; '70' alerts above 70%).")]
    public string Warning { get; set; } = string.Empty;

    [PluginOption(Sample = "95")]
    [Option('c', "critical", Default = "85", MetaValue = "RANGE",
        HelpText = "Critical threshold, same syntax; evaluated before the warning threshold.")]
    public string Critical { get; set; } = string.Empty;

    [PluginOption(Sample = "5")]
    [Option("nat-failure-warning", Default = "1", MetaValue = "RANGE",
        HelpText = "Warning threshold on the share (%) of new flows to the busiest source-NAT tuple that nf_nat finds no port for (same syntax as -w; the tuple's fill is held to -w and -c).")]
    public string NatFailureWarning { get; set; } = string.Empty;

    [PluginOption(Sample = "50")]
    [Option("nat-failure-critical", Default = "10", MetaValue = "RANGE",
        HelpText = "Critical threshold on that share; a tuple whose every port is held is critical whatever the thresholds.")]
    public string NatFailureCritical { get; set; } = string.Empty;

    [PluginOption(Sample = "40000-40009")]
    [Option("nat-range", MetaValue = "LOW-HIGH",
        HelpText = "The source ports SNAT/MASQUERADE gives each NAT tuple (a rule's --to-ports or snat to ADDR:LOW-HIGH), where the rules in force cannot be read or say otherwise than what the kernel uses.")]
    public string? NatRange { get; set; }

    [PluginOption]
    [Option("ignore-nat",
        HelpText = "Do not read source-NAT tuples (no conntrack dump, no NAT rules) and do not alert on them: for a namespace that forwards packets without source NAT, where the plugin runs without CAP_NET_ADMIN and would otherwise say UNKNOWN. The conntrack table is still checked.")]
    public bool IgnoreNat { get; set; }

    [PluginOption(Sample = "20:critical")]
    [Option('t', "timeout", Default = "10", MetaValue = "SECONDS[:STATE]",
        HelpText = "Give up after SECONDS (1-3600) and report STATE (ok, warning, critical or unknown; default unknown).")]
    public string Timeout { get; set; } = string.Empty;

    [PluginOption(Sample = "7")]
    [Option("top", Default = 5, MetaValue = "N",
        HelpText = "List the N busiest destinations in the detail lines (0-100).")]
    public int Top { get; set; }

    [PluginOption(Sample = "tcp")]
    [Option("protocol", Default = "all", MetaValue = "tcp|udp|all",
        HelpText = "Check TCP only, UDP only, or both.")]
    public string Protocol { get; set; } = string.Empty;

    [PluginOption(Sample = "/")]
    [Option("proc-root", Default = "/proc", MetaValue = "DIR",
        HelpText = "Read DIR/sys/net/ipv4/* and DIR/net/{tcp,tcp6,udp,udp6} instead of /proc (a copy of a /proc tree, or a test fixture). A live /proc of another network namespace (a host's /proc in a container) is read by entering the namespace of its PID 1 (root), else UNKNOWN; -v names the namespace read.")]
    public string ProcRoot { get; set; } = string.Empty;

    [PluginOption(Sample = "proc")]
    [Option("source", Default = "auto", MetaValue = "auto|bpf|netlink|proc",
        HelpText = "Where sockets are read. bpf: the kernel's BPF socket iterators, exact (sees ports taken by bind() before connect(), a TIME_WAIT's own timestamps); needs root (CAP_BPF and CAP_PERFMON), BTF (/sys/kernel/btf/vmlinux) and Linux 5.8+. netlink: sock_diag, filtered in the kernel, sees bound-but-idle sockets. proc: /proc/net/*. auto: bpf, then netlink, then /proc/net, each where the kernel allows it (-v says why one was refused); proc with --proc-root.")]
    public string Source { get; set; } = string.Empty;

    [PluginOption(Group = "namespaces")]
    [Option("all-namespaces",
        HelpText = "Check every network namespace on the host (containers, pods, ip netns); the worst one drives the state. Needs root to enter other namespaces; what is skipped is said.")]
    public bool AllNamespaces { get; set; }

    [PluginOption(Sample = "/proc/self/ns/net", Group = "namespaces")]
    [Option("netns", MetaValue = "NAME|PATH",
        HelpText = "Check one network namespace: a name under /run/netns (ip netns add) or an nsfs path such as /proc/PID/ns/net. Needs root.")]
    public string? Netns { get; set; }

    [PluginOption(Sample = "1", Group = "namespaces")]
    [Option("pid", MetaValue = "PID",
        HelpText = "Check the network namespace of process PID (e.g. a container's). Needs root unless it is your own.")]
    public string? Pid { get; set; }

    [PluginOption]
    [Option("processes",
        HelpText = "Name the processes holding the busiest tuples' sockets (walks /proc/*/fd: costs time on big hosts; as non-root only your own processes).")]
    public bool Processes { get; set; }

    [PluginOption(Sample = "json")]
    [Option("format", Default = "nagios", MetaValue = "nagios|json|prometheus",
        HelpText = "Output format: Nagios plugin text, one JSON document (for Zabbix; exits 0 once written, the state is inside), or the Prometheus text format.")]
    public string Format { get; set; } = string.Empty;

    [PluginOption(Sample = "out.prom")]
    [Option("output", MetaValue = "FILE",
        HelpText = "Write the output to FILE atomically (a temporary file in the same directory, then rename) instead of stdout, e.g. a *.prom file in node_exporter's textfile directory.")]
    public string? Output { get; set; }

    [PluginOption]
    [Option('v', "verbose", FlagCounter = true,
        HelpText = "More detail: -v sysctls and how sockets were read, -vv what that way of reading cannot see, -vvv files read and timings.")]
    public int Verbose { get; set; }

    [PluginOption(Usage = false)]
    [Option('h', "help", HelpText = "Print this help and exit 3.")]
    public bool Help { get; set; }

    [PluginOption(Usage = false)]
    [Option('V', "version", HelpText = "Print the version and exit 3.")]
    public bool Version { get; set; }
}
