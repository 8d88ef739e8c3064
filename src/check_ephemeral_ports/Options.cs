using CommandLine;

namespace EphemeralPorts.Cli;

/// <summary>
/// The command line as CommandLineParser sees it: a mutable DTO, kept whole for Native AOT by the
/// DynamicDependency in <see cref="ArgumentParser"/>. Values stay strings where the plugin has its own
/// syntax (ranges, SECONDS:STATE) so that <see cref="SettingsBinder"/> can say exactly what is wrong.
/// Every option here must be mapped in icinga/ (a test keeps them in step).
/// </summary>
public sealed class Options
{
    [Option('w', "warning", Default = "70", MetaValue = "RANGE",
        HelpText = "Warning threshold on the busiest TCP tuple's and on UDP's percentage of usable ports (Monitoring Plugins range syntax; '70' alerts above 70%).")]
    public string Warning { get; set; } = "70";

    [Option('c', "critical", Default = "85", MetaValue = "RANGE",
        HelpText = "Critical threshold, same syntax; evaluated before the warning threshold.")]
    public string Critical { get; set; } = "85";

    [Option('t', "timeout", Default = "10", MetaValue = "SECONDS[:STATE]",
        HelpText = "Give up after SECONDS (1-3600) and report STATE (ok, warning, critical or unknown; default unknown).")]
    public string Timeout { get; set; } = "10";

    [Option("top", Default = 5, MetaValue = "N",
        HelpText = "List the N busiest destinations in the detail lines (0-100).")]
    public int Top { get; set; } = 5;

    [Option("protocol", Default = "all", MetaValue = "tcp|udp|all",
        HelpText = "Check TCP only, UDP only, or both.")]
    public string Protocol { get; set; } = "all";

    [Option("proc-root", Default = "/proc", MetaValue = "DIR",
        HelpText = "Read DIR/sys/net/ipv4/* and DIR/net/{tcp,tcp6,udp,udp6} instead of /proc (a host /proc mounted in a container, or a test fixture).")]
    public string ProcRoot { get; set; } = "/proc";

    [Option("source", Default = "auto", MetaValue = "auto|netlink|proc",
        HelpText = "Where sockets are read: netlink sock_diag (fast, filtered in the kernel, sees bound-but-idle sockets) or /proc/net/*. auto: netlink for /proc, falling back to /proc/net where netlink is refused; proc with --proc-root.")]
    public string Source { get; set; } = "auto";

    [Option("all-namespaces",
        HelpText = "Check every network namespace on the host (containers, pods, ip netns); the worst one drives the state. Needs root to enter other namespaces; what is skipped is said.")]
    public bool AllNamespaces { get; set; }

    [Option("netns", MetaValue = "NAME|PATH",
        HelpText = "Check one network namespace: a name under /run/netns (ip netns add) or an nsfs path such as /proc/PID/ns/net. Needs root.")]
    public string? Netns { get; set; }

    [Option("pid", MetaValue = "PID",
        HelpText = "Check the network namespace of process PID (e.g. a container's). Needs root unless it is your own.")]
    public string? Pid { get; set; }

    [Option("processes",
        HelpText = "Name the processes holding the busiest tuples' sockets (walks /proc/*/fd: costs time on big hosts; as non-root only your own processes).")]
    public bool Processes { get; set; }

    [Option("format", Default = "nagios", MetaValue = "nagios|json|prometheus",
        HelpText = "Output format: Nagios plugin text, one JSON document (for Zabbix; exits 0 once written, the state is inside), or the Prometheus text format.")]
    public string Format { get; set; } = "nagios";

    [Option("output", MetaValue = "FILE",
        HelpText = "Write the output to FILE atomically (a temporary file in the same directory, then rename) instead of stdout, e.g. a *.prom file in node_exporter's textfile directory.")]
    public string? Output { get; set; }

    [Option('v', "verbose", FlagCounter = true,
        HelpText = "More detail: -v sysctls and how sockets were read, -vv what that way of reading cannot see, -vvv files read and timings.")]
    public int Verbose { get; set; }

    [Option('h', "help", HelpText = "Print this help and exit 3.")]
    public bool Help { get; set; }

    [Option('V', "version", HelpText = "Print the version and exit 3.")]
    public bool Version { get; set; }
}
