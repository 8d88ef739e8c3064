using System.Globalization;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Check;
using EphemeralPorts.Plugin;
using EphemeralPorts.Rendering;

namespace EphemeralPorts.Cli;

/// <summary>The validated, immutable settings of one run: the check's, and how its outcome is rendered and delivered.</summary>
public sealed record Settings(CheckSettings Check, OutputFormat Format, string? Output, int Verbosity);

/// <summary>Binds the parsed <see cref="Options"/> to <see cref="Settings"/>; every refusal is a <see cref="CheckException"/>.</summary>
public static class SettingsBinder
{
    public const int MaxTimeoutSeconds = 3600;
    public const int MaxTop = 100;

    /// <param name="options">The parsed command line.</param>
    /// <param name="invoker">Who the run acts for (sudo's invoking user): names on the command line are looked at as them.</param>
    public static Settings Bind(Options options, Native.ActingUser? invoker = null)
    {
        var warning = Range("-w/--warning", options.Warning);
        var critical = Range("-c/--critical", options.Critical);
        var natFailure = new Thresholds(Range("--nat-failure-warning", options.NatFailureWarning), Range("--nat-failure-critical", options.NatFailureCritical));
        var (timeout, timeoutState) = Timeout(options.Timeout);
        if (options.Top is < 0 or > MaxTop)
        {
            throw new CheckException($"--top {options.Top}: expected 0-{MaxTop}");
        }

        var protocol = options.Protocol.Trim().ToLowerInvariant() switch
        {
            "all" or "both" => ProtocolChoice.All,
            "tcp" => ProtocolChoice.Tcp,
            "udp" => ProtocolChoice.Udp,
            _ => throw new CheckException($"--protocol '{options.Protocol}': expected tcp, udp or all"),
        };

        var format = options.Format.Trim().ToLowerInvariant() switch
        {
            "nagios" => OutputFormat.Nagios,
            "json" => OutputFormat.Json,
            "prometheus" => OutputFormat.Prometheus,
            _ => throw new CheckException($"--format '{options.Format}': expected nagios, json or prometheus"),
        };

        // Looked at as the user who ran sudo: the answer must not tell them what is in a directory they cannot see.
        if (options.Output is { } output && (output.Length == 0 || output.EndsWith('/') || (invoker is { } user ? Native.Credentials.As(user, () => Directory.Exists(output)) : Directory.Exists(output))))
        {
            throw new CheckException($"--output '{output}': expected a file name");
        }

        var source = options.Source.Trim().ToLowerInvariant() switch
        {
            "auto" => SourceChoice.Auto,
            "bpf" => SourceChoice.Bpf,
            "netlink" => SourceChoice.Netlink,
            "proc" => SourceChoice.Proc,
            _ => throw new CheckException($"--source '{options.Source}': expected auto, bpf, netlink or proc"),
        };

        // netlink and BPF answer for the namespace this process runs in; another /proc tree is
        // another host or namespace, so the two cannot be mixed.
        if (source is SourceChoice.Netlink or SourceChoice.Bpf && !NamespaceView.IsLiveProc(options.ProcRoot))
        {
            throw new CheckException($"--source {options.Source.Trim().ToLowerInvariant()} reads this process's own network namespace: it cannot go with --proc-root {options.ProcRoot}");
        }

        // A tree's namespaces are read through its processes' PID/net (--all-namespaces); one chosen
        // by name or pid is entered, which only this host's own namespaces can be.
        var namespaces = Namespaces(options);
        if (namespaces is { All: false } && !NamespaceView.IsLiveProc(options.ProcRoot))
        {
            throw new CheckException($"--netns and --pid enter namespaces of this host: they cannot go with --proc-root {options.ProcRoot}");
        }

        var reading = new ReadingSettings(protocol, options.ProcRoot, source, namespaces, options.Processes) { NatRange = NatRange(options.NatRange), IgnoreNat = options.IgnoreNat };
        return new Settings(new CheckSettings(reading, new Thresholds(warning, critical) { Sets = new Dictionary<string, Thresholds> { [Kinds.Nat.NatTupleKind.FailureThresholds] = natFailure } }, options.Top, timeout, timeoutState), format, options.Output, options.Verbose);
    }

    private static (int Low, int High)? NatRange(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var parts = text.Split('-');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var low)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var high)
            || low is < 1 or > 65535 || high is < 1 or > 65535 || low > high)
        {
            throw new CheckException($"--nat-range '{text}': expected LOW-HIGH, ports 1-65535, LOW not above HIGH");
        }

        return (low, high);
    }

    private static NamespaceChoice? Namespaces(Options options)
    {
        var chosen = (options.AllNamespaces ? 1 : 0) + (options.Netns is null ? 0 : 1) + (options.Pid is null ? 0 : 1);
        if (chosen > 1)
        {
            throw new CheckException("--all-namespaces, --netns and --pid exclude each other: choose one");
        }

        if (options.Netns is { Length: 0 })
        {
            throw new CheckException("--netns: empty name");
        }

        int? pid = null;
        if (options.Pid is { } text)
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p < 1)
            {
                throw new CheckException($"--pid '{text}': expected a process id");
            }

            pid = p;
        }

        // A name need not be UTF-8 (ip netns add takes any byte but '/'): its bytes as given.
        var raw = options.Netns is { } netns ? RawArguments.BytesOf(netns, "--netns") : null;
        return chosen == 0 ? null : new NamespaceChoice(options.AllNamespaces, options.Netns, pid) { NetnsBytes = raw };
    }

    private static NagiosRange Range(string option, string text) =>
        NagiosRange.TryParse(text, out var range, out var error)
            ? range!
            : throw new CheckException($"{option} '{text}': bad range: {error}");

    private static (TimeSpan, ServiceState) Timeout(string text)
    {
        var parts = text.Split(':');
        if (parts.Length > 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || seconds is < 1 or > MaxTimeoutSeconds)
        {
            throw new CheckException($"-t/--timeout '{text}': expected SECONDS[:STATE] with SECONDS 1-{MaxTimeoutSeconds}");
        }

        var state = ServiceState.Unknown;
        if (parts.Length == 2 && !ServiceStates.TryParse(parts[1], out state))
        {
            throw new CheckException($"-t/--timeout '{text}': state '{parts[1]}' is not ok, warning, critical or unknown");
        }

        return (TimeSpan.FromSeconds(seconds), state);
    }
}
