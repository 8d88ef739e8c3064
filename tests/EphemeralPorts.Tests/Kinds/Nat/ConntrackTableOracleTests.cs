using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EphemeralPorts.Tests.Oracle;
using EphemeralPorts.Tests.Support;
using Xunit.Abstractions;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// Two private namespaces for the conntrack table tests (tests/oracle/conntrack_fill.py serve): A
/// filled by ctnetlink until the kernel refuses an entry (assured entries, which early_drop cannot
/// evict), B with a few entries. The script answers one command a line; it deletes both namespaces
/// when its input ends, so a test run that dies takes them with it. Started by the first test that
/// asks (a skipped class makes nothing).
/// </summary>
public sealed class ConntrackLab : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private static readonly string Script = Path.Combine(Repo.Root, "tests", "oracle", "conntrack_fill.py");
    private readonly Lock _lock = new();
    private Process? _server;

    /// <summary>Namespace A, full.</summary>
    public string A { get; private set; } = string.Empty;

    /// <summary>Namespace B, a few entries.</summary>
    public string B { get; private set; } = string.Empty;

    /// <summary>Namespace C, empty but while a test fills it.</summary>
    public string C { get; private set; } = string.Empty;

    /// <summary>nf_conntrack_max, read by the script at start.</summary>
    public long Max { get; private set; }

    /// <summary>What the first fill of A answered: accepted, refused, first_refusal, seconds.</summary>
    public JsonElement FirstFill { get; private set; }

    public TimeSpan Started { get; private set; }

    public void Start()
    {
        lock (_lock)
        {
            if (_server is not null)
            {
                return;
            }

            var clock = Stopwatch.StartNew();
            var start = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Script);
            start.ArgumentList.Add("serve");
            _server = Process.Start(start)!;
            var ready = ReadLine() ?? throw new InvalidOperationException($"conntrack_fill.py serve failed: {_server.StandardError.ReadToEnd()}");
            using (var doc = JsonDocument.Parse(ready))
            {
                A = doc.RootElement.GetProperty("a").GetString()!;
                B = doc.RootElement.GetProperty("b").GetString()!;
                C = doc.RootElement.GetProperty("c").GetString()!;
                Max = doc.RootElement.GetProperty("max").GetInt64();
            }

            FirstFill = Ask("fill a");
            Ask("fill b 5").GetProperty("accepted").GetInt32().ShouldBe(5, "B's first entries");
            Started = clock.Elapsed;
        }
    }

    /// <summary>One command to the script, its one-line JSON answer (an "error" answer fails the test).</summary>
    public JsonElement Ask(string command)
    {
        lock (_lock)
        {
            _server.ShouldNotBeNull("the lab is started first");
            _server.StandardInput.WriteLine(command);
            _server.StandardInput.Flush();
            var line = ReadLine() ?? throw new InvalidOperationException($"conntrack_fill.py ended at '{command}': {_server.StandardError.ReadToEnd()}");
            using var doc = JsonDocument.Parse(line);
            doc.RootElement.TryGetProperty("error", out var error).ShouldBeFalse($"{command}: {error}");
            return doc.RootElement.Clone();
        }
    }

    /// <summary>nf_conntrack_count of a namespace of the lab ("a" or "b").</summary>
    public long Count(string ns) => Ask("stat " + ns).GetProperty("count").GetInt64();

    private string? ReadLine()
    {
        var line = _server!.StandardOutput.ReadLineAsync();
        if (!line.Wait(Limit))
        {
            Stop();
            throw new TimeoutException($"conntrack_fill.py gave no answer within {Limit}");
        }

        return line.Result;
    }

    private void Stop()
    {
        if (_server is null)
        {
            return;
        }

        // End of input: the script deletes its namespaces and exits. Killed, it cannot: then here.
        _server.StandardInput.Close();
        if (!_server.WaitForExit(Limit))
        {
            _server.Kill(entireProcessTree: true);
            _server.WaitForExit();
        }

        foreach (var name in new[] { A, B, C }.Where(n => n.Length > 0 && File.Exists(Path.Combine("/run/netns", n))))
        {
            Command.MustSucceed("ip", "netns", "del", name);
        }

        _server.Dispose();
    }

    public void Dispose() => Stop();
}

/// <summary>
/// The conntrack table against the kernel (issue 21: a table filled to the limit, and the
/// namespaces' sum against the global max). __nf_conntrack_alloc() holds each namespace's own
/// nf_conntrack_count against the one nf_conntrack_max, so a private namespace fills to exactly
/// the max without touching the host's table. The plugin, run in it, must say CRITICAL and "new
/// connections are dropped now" exactly there, count the SYN the kernel then drops, warn before,
/// say OK beside it in a namespace that still takes entries although the two together pass the
/// max, and with --all-namespaces report the kernel's sum of every namespace's count. In the
/// collection of the tests that count every namespace of the host: the two made here would be
/// counted by them.
/// </summary>
[Collection(NamespaceCollection.Name)]
[Trait(Tier.Key, Tier.Full)]
public class ConntrackTableOracleTests(ConntrackLab lab, ITestOutputHelper output) : IClassFixture<ConntrackLab>
{
    [ConntrackFillFact]
    public void A_namespace_fills_to_exactly_nf_conntrack_max_and_the_plugin_there_is_critical_and_counts_the_drop()
    {
        lab.Start();
        var max = lab.Max;
        var fill = lab.FirstFill;
        output.WriteLine($"nf_conntrack_max {max}: {fill} (lab ready in {lab.Started.TotalSeconds:F1} s)");
        fill.GetProperty("accepted").GetInt64().ShouldBe(max, "a new namespace takes exactly nf_conntrack_max entries");
        fill.GetProperty("first_refusal").GetString().ShouldBe("ENOMEM", "the kernel's refusal past the limit");
        lab.Count("a").ShouldBe(max);

        var nagios = InNamespace(lab.A);
        output.WriteLine(nagios.FirstLine);
        nagios.ExitCode.ShouldBe(2, nagios.Stdout);
        nagios.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - conntrack table holds ");
        nagios.FirstLine.ShouldContain($"conntrack table holds {max} of {max} entries (100%), new connections are dropped now", Case.Sensitive);
        nagios.FirstLine.ShouldContain($"'conntrack_pct'=100%;70;85;0;100 'conntrack_entries'={max};;;0;{max}", Case.Sensitive);

        using (var json = JsonDocument.Parse(InNamespace(lab.A, "--format", "json").Stdout))
        {
            var root = json.RootElement;
            root.GetProperty("state").GetString().ShouldBe("CRITICAL");
            root.GetProperty("summary").GetString()!.ShouldContain("new connections are dropped now");
            root.GetProperty("runbook").GetString()!.ShouldEndWith("#conntrack-critical");
            var table = root.GetProperty("conntrack");
            table.GetProperty("entries").GetInt64().ShouldBe(max);
            table.GetProperty("max").GetInt64().ShouldBe(max);
            table.GetProperty("usedPct").GetDouble().ShouldBe(100);
        }

        // A real connection in the full namespace: its SYN needs an entry, the kernel has none to
        // give and drops it (drop +1, nothing evicted), and the plugin's drop counter shows it.
        var before = Perf(InNamespace(lab.A), "conntrack_drop");
        var attempt = lab.Ask("connect a");
        output.WriteLine($"connect in the full namespace: {attempt}");
        attempt.GetProperty("connected").GetBoolean().ShouldBeFalse("the SYN is dropped");
        var kernelBefore = attempt.GetProperty("before").GetProperty("drop").GetInt64();
        var kernelAfter = attempt.GetProperty("after").GetProperty("drop").GetInt64();
        kernelAfter.ShouldBeGreaterThan(kernelBefore, "the kernel's drop counter");
        attempt.GetProperty("after").GetProperty("early_drop").GetInt64().ShouldBe(attempt.GetProperty("before").GetProperty("early_drop").GetInt64(), "assured entries are not evicted");
        var after = InNamespace(lab.A);
        Perf(after, "conntrack_drop").ShouldBeGreaterThanOrEqualTo(before + 1, after.FirstLine);
        Perf(after, "conntrack_drop").ShouldBe(kernelAfter, "the counter the plugin reports is the kernel's");
        lab.Count("a").ShouldBe(max, "the dropped SYN left no entry");
    }

    [ConntrackFillFact]
    public void Before_the_limit_the_plugin_warns_and_says_full_only_at_the_limit()
    {
        lab.Start();
        var max = lab.Max;

        // A tenth of the entries taken out: between -w and -c, computed from the max read here.
        var taken = max / 10;
        lab.Ask($"delete a {taken}").GetProperty("count").GetInt64().ShouldBe(max - taken);
        try
        {
            var percent = 100.0 * (max - taken) / max;
            var warning = Math.Floor(percent - 1).ToString(CultureInfo.InvariantCulture);
            var critical = Math.Ceiling(percent + 1).ToString(CultureInfo.InvariantCulture);
            var run = InNamespace(lab.A, "-w", warning, "-c", critical);
            output.WriteLine($"-w {warning} -c {critical}: {run.FirstLine}");
            run.ExitCode.ShouldBe(1, run.Stdout);
            run.FirstLine.ShouldStartWith($"EPHEMERAL PORTS WARNING - conntrack table holds {max - taken} of {max} entries ({Shown(percent)}%) - ");
            run.FirstLine.ShouldNotContain("dropped now");
            Perf(run, "conntrack_entries").ShouldBe(max - taken);

            // CRITICAL by the thresholds is not yet full: the sentence says what the kernel does.
            var critical2 = InNamespace(lab.A, "-w", "10", "-c", "20");
            critical2.ExitCode.ShouldBe(2, critical2.Stdout);
            critical2.FirstLine.ShouldNotContain("dropped now");
        }
        finally
        {
            // Back to full: exactly the entries taken out fit again, and no more.
            var refill = lab.Ask("fill a");
            refill.GetProperty("accepted").GetInt64().ShouldBe(taken);
            refill.GetProperty("first_refusal").GetString().ShouldBe("ENOMEM");
        }
    }

    [ConntrackFillFact]
    public void One_entry_short_of_the_limit_is_not_shown_as_full()
    {
        lab.Start();
        var max = lab.Max;
        lab.Ask("delete a 1").GetProperty("count").GetInt64().ShouldBe(max - 1);
        try
        {
            // 262,143 of 262,144 is 99.9996%: two decimals would round it to the "100%" of a full table.
            var run = InNamespace(lab.A);
            output.WriteLine(run.FirstLine);
            run.FirstLine.ShouldContain($"conntrack table holds {max - 1} of {max} entries (", Case.Sensitive);
            run.FirstLine.ShouldNotContain($"of {max} entries (100%)");
            run.FirstLine.ShouldNotContain("dropped now");
            Perf(run, "conntrack_pct").ShouldBeLessThan(100);
            using var json = JsonDocument.Parse(InNamespace(lab.A, "--format", "json").Stdout);
            json.RootElement.GetProperty("conntrack").GetProperty("usedPct").GetDouble().ShouldBeLessThan(100);

            // The one entry missing is what the kernel still takes.
            var one = lab.Ask("fill a 1");
            one.GetProperty("accepted").GetInt64().ShouldBe(1);
            one.GetProperty("first_refusal").ValueKind.ShouldBe(JsonValueKind.Null);
        }
        finally
        {
            var refill = lab.Ask("fill a");
            refill.GetProperty("first_refusal").GetString().ShouldBe("ENOMEM");
            lab.Count("a").ShouldBe(max);
        }
    }

    [ConntrackFillFact]
    public void A_table_full_of_unassured_entries_evicts_one_for_a_new_connection_instead_of_dropping_it()
    {
        lab.Start();
        var max = lab.Max;
        try
        {
            // Entries without ASSURED: early_drop() may evict them. ctnetlink's own allocations
            // (nf_conntrack_alloc(), hash 0) search the buckets from 0 and soon find none: those
            // are refused; a packet's searches from its own flow's bucket.
            var fill = lab.Ask($"fill c {max + 64} unassured");
            output.WriteLine($"unassured fill: {fill}");
            fill.GetProperty("count").GetInt64().ShouldBe(max);

            // Full, but of entries early_drop may evict: the plugin does not say "dropped now".
            var full = InNamespace(lab.C);
            output.WriteLine(full.FirstLine);
            full.FirstLine.ShouldContain($"conntrack table holds {max} of {max} entries (100%), new connections are dropped unless early_drop finds one of its {max} unassured entries beside them", Case.Sensitive);

            var attempt = lab.Ask("connect c");
            output.WriteLine($"connect in the namespace full of unassured entries: {attempt}");
            attempt.GetProperty("connected").GetBoolean().ShouldBeTrue("an unassured entry makes room");
            var before = attempt.GetProperty("before");
            var after = attempt.GetProperty("after");
            after.GetProperty("early_drop").GetInt64().ShouldBeGreaterThan(before.GetProperty("early_drop").GetInt64());
            after.GetProperty("drop").GetInt64().ShouldBe(before.GetProperty("drop").GetInt64(), "nothing dropped");

            // The plugin counts the evictions the kernel counted.
            var run = InNamespace(lab.C);
            output.WriteLine(run.FirstLine);
            run.ExitCode.ShouldBe(2, run.Stdout);
            Perf(run, "conntrack_early_drop").ShouldBe(lab.Ask("stat c").GetProperty("counters").GetProperty("early_drop").GetInt64());
            // Full of unassured entries a new flow is not simply dropped: never "dropped now", and
            // where the table is still full when the plugin reads it (an eviction or the test's
            // connection ending may have freed entries since), the sentence says why.
            run.FirstLine.ShouldNotContain("dropped now", Case.Sensitive);
            if (run.FirstLine.Contains($"holds {max} of {max} entries", StringComparison.Ordinal))
            {
                run.FirstLine.ShouldContain("new connections are dropped unless early_drop finds one of its ", Case.Sensitive, run.FirstLine);
            }
        }
        finally
        {
            lab.Ask("flush c").GetProperty("count").GetInt64().ShouldBe(0);
        }
    }

    [ConntrackFillFact]
    public void The_namespaces_sum_is_no_limit_a_namespace_beside_a_full_one_takes_entries_and_is_ok()
    {
        lab.Start();
        var max = lab.Max;
        lab.Count("a").ShouldBe(max);
        var b = lab.Count("b");
        (max + b).ShouldBeGreaterThan(max);

        // A refuses, B beside it still takes entries: the kernel holds each count against the max alone.
        lab.Ask("fill a 1").GetProperty("first_refusal").GetString().ShouldBe("ENOMEM");
        var more = lab.Ask("fill b 5");
        more.GetProperty("accepted").GetInt32().ShouldBe(5);
        more.GetProperty("first_refusal").ValueKind.ShouldBe(JsonValueKind.Null);
        var count = more.GetProperty("count").GetInt64();
        count.ShouldBe(b + 5);
        (lab.Count("a") + count).ShouldBeGreaterThan(max, "A and B together past nf_conntrack_max");

        var run = InNamespace(lab.B);
        output.WriteLine(run.FirstLine);
        run.ExitCode.ShouldBe(0, run.Stdout);
        run.FirstLine.ShouldNotContain("conntrack table holds");
        Perf(run, "conntrack_entries").ShouldBe(count);
        Perf(run, "conntrack_pct").ShouldBe(Math.Round(100.0 * count / max, 2));
    }

    [ConntrackFillFact]
    public void All_namespaces_reports_the_kernels_sum_of_every_namespaces_count()
    {
        lab.Start();
        var max = lab.Max;

        // The namespaces the plugin sees in a private PID namespace: its own (the host's) and every
        // one under /run/netns. Others' namespaces may change while it runs: a run counts when the
        // kernel's sum is the same before and after it.
        for (var attempt = 1; ; attempt++)
        {
            var before = lab.Ask("counts");
            var nagios = AllNamespaces("-v");
            var prometheus = AllNamespaces("--format", "prometheus");
            var json = AllNamespaces("--format", "json");
            var after = lab.Ask("counts");
            var sum = before.GetProperty("sum").GetInt64();
            if (sum != after.GetProperty("sum").GetInt64() && attempt < 3)
            {
                output.WriteLine($"the namespaces changed during run {attempt}: {before} / {after}");
                continue;
            }

            output.WriteLine($"kernel: {after}");
            output.WriteLine(nagios.Stdout);
            after.GetProperty("sum").GetInt64().ShouldBe(sum, "the namespaces' counts did not settle in 3 runs");
            sum.ShouldBeGreaterThan(max, "A full and B beside it: the sum passes the max");
            Perf(nagios, "conntrack_entries_all").ShouldBe(sum, nagios.FirstLine);
            nagios.FirstLine.ShouldEndWith($"'conntrack_entries_all'={sum};;;0", Case.Sensitive, "a figure, not a limit: no max");
            PrometheusValue(prometheus.Stdout, "ephemeral_ports_conntrack_entries_all_namespaces").ShouldBe(sum);

            // The overview gives each namespace's state (the full one CRITICAL by its table, B OK);
            // the JSON overview's summary says why. (Other namespaces of the host may be worse: the
            // status line names the worst, not necessarily A.)
            nagios.ExitCode.ShouldBe(2, nagios.Stdout);
            nagios.Stdout.ShouldContain($"\n  netns {lab.A}: CRITICAL 100%\n", Case.Sensitive, "the namespace's worst kind is its table");
            nagios.Stdout.ShouldContain($"\n  netns {lab.B}: OK ", Case.Sensitive);
            using (var doc = JsonDocument.Parse(json.Stdout))
            {
                var overview = doc.RootElement.GetProperty("namespaces").EnumerateArray().ToList();
                var a = overview.Single(n => n.GetProperty("name").GetString() == $"netns {lab.A}");
                a.GetProperty("state").GetString().ShouldBe("CRITICAL");
                a.GetProperty("summary").GetString()!.ShouldStartWith($"conntrack table holds {max} of {max} entries (100%), new connections are dropped now");
                overview.Single(n => n.GetProperty("name").GetString() == $"netns {lab.B}").GetProperty("state").GetString().ShouldBe("OK");
            }

            PrometheusValue(prometheus.Stdout, $"ephemeral_ports_namespace_conntrack_ratio{{namespace=\"netns {lab.A}\"").ShouldBe(1);
            var bCount = after.GetProperty("named").EnumerateArray().Single(n => n.GetProperty("name").GetString() == lab.B).GetProperty("count").GetInt64();
            PrometheusValue(prometheus.Stdout, $"ephemeral_ports_namespace_conntrack_ratio{{namespace=\"netns {lab.B}\"").ShouldBe((double)bCount / max, 1e-6);
            return;
        }
    }

    /// <summary>The plugin run in a namespace of the lab.</summary>
    private static PluginRun InNamespace(string ns, params string[] args) =>
        Support.Plugin.Run(Start(["ip", "netns", "exec", ns, Repo.NativeBinary, .. args]), TimeSpan.FromSeconds(60));

    /// <summary>--all-namespaces in a private PID namespace with its own /proc: only /run/netns and the host's namespace are found.</summary>
    private static PluginRun AllNamespaces(params string[] args) =>
        Support.Plugin.Run(Start(["unshare", "--pid", "--fork", "--mount-proc", Repo.NativeBinary, "--all-namespaces", .. args]), TimeSpan.FromSeconds(60));

    private static ProcessStartInfo Start(string[] command)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, StandardOutputEncoding = Encoding.UTF8 };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    private static double Perf(PluginRun run, string label) =>
        run.Perf.TryGetValue(label, out var value) ? value : throw new ShouldAssertException($"no '{label}' in {run.FirstLine}");

    private static double PrometheusValue(string exposition, string series)
    {
        var line = exposition.Split('\n').SingleOrDefault(l => l.StartsWith(series, StringComparison.Ordinal) && !l.StartsWith('#'))
            ?? throw new ShouldAssertException($"no {series} in\n{exposition}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    /// <summary>A percentage as the plugin prints it: two decimals at most.</summary>
    private static string Shown(double percent) => EphemeralPorts.Plugin.Numbers.Format(percent);
}

/// <summary>
/// A conntrack table test: what a NAT oracle test needs, and an nf_conntrack_max whose table can
/// be filled here (each entry is a 256-byte object of the nf_conntrack slab: 262,144 took 64 MB).
/// </summary>
public sealed class ConntrackFillFactAttribute : FactAttribute
{
    private const long Largest = 2 * 1024 * 1024;

    public ConntrackFillFactAttribute()
    {
        if ((NatOracle.WhyNot() ?? WhyNotFillable()) is { } reason)
        {
            Skip = reason;
        }
    }

    private static string? WhyNotFillable()
    {
        // Absent until nf_conntrack is loaded: the script's nft rule loads it.
        const string file = "/proc/sys/net/netfilter/nf_conntrack_max";
        if (!File.Exists(file))
        {
            return null;
        }

        var max = long.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture);
        return max switch
        {
            0 => "nf_conntrack_max is 0 (no limit): there is no table to fill",
            > Largest => $"nf_conntrack_max is {max}: filling a namespace to it would take {max * 256 / (1 << 20)} MB of kernel memory",
            _ => null,
        };
    }
}
