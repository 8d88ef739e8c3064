using System.Text.RegularExpressions;
using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// Three named network namespaces (ip netns add), each with its own range and load, held by a
/// holder.py process living inside it: one filled until the kernel refuses connect(), one at 75%
/// of a 20-port range, one at 50%. Removed again when the tests are done.
/// </summary>
public sealed class NamespaceLab : IDisposable
{
    private readonly List<Process> _holders = [];
    private readonly List<string> _namespaces = [];

    public NamespaceLab()
    {
        if (Environments.WhyNotRoot() is not null || Environments.WhyNoNamespaces() is not null)
        {
            return;
        }

        var tag = Environment.ProcessId;
        HostHolder = StartHostHolder();
        Full = Start($"cep-full-{tag}", 40000, 40009, "fill");
        Warm = Start($"cep-warm-{tag}", 41000, 41019, "15");
        Half = Start($"cep-half-{tag}", 42000, 42009, "5");
    }

    public Holder Full { get; } = null!;

    /// <summary>20 loopback connections held by root in the test's own namespace (its range untouched).</summary>
    public Process HostHolder { get; } = null!;

    public Holder Warm { get; } = null!;

    public Holder Half { get; } = null!;

    public sealed record Holder(string Namespace, int Pid, int Connections, string Refusal);

    private Holder Start(string name, int low, int high, string count)
    {
        Command.MustSucceed("ip", "netns", "add", name);
        _namespaces.Add(name);
        var start = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "netns", "exec", name, "/usr/bin/python3", Path.Combine(Repo.Root, "tests", "oracle", "holder.py"), $"{low}", $"{high}", count })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        _holders.Add(process);
        var ready = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"holder in {name} failed: {process.StandardError.ReadToEnd()}");
        var parts = ready.Split(' ');
        return new Holder(name, process.Id, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2]);
    }

    private Process StartHostHolder()
    {
        const string script = """
            import socket, sys
            server = socket.socket()
            for port in range(20000, 20100):  # below the default range: the listener costs nothing
                try:
                    server.bind(("127.0.0.1", port))
                    break
                except OSError:
                    pass
            server.listen(64)
            held = []
            for _ in range(20):
                held.append(socket.create_connection(server.getsockname()))
                held.append(server.accept()[0])
            print("ready", flush=True)
            sys.stdin.read()
            """;
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        var process = Process.Start(start)!;
        _holders.Add(process);
        process.StandardOutput.ReadLine().ShouldBe("ready");
        return process;
    }

    public void Dispose()
    {
        foreach (var holder in _holders)
        {
            holder.StandardInput.Close();
            if (!holder.WaitForExit(10_000))
            {
                holder.Kill();
            }

            holder.Dispose();
        }

        foreach (var name in _namespaces)
        {
            Command.MustSucceed("ip", "netns", "del", name);
        }
    }
}

/// <summary>--all-namespaces, --netns, --pid and --processes against namespaces made for real.</summary>
[Collection(NamespaceCollection.Name)]
public class NamespaceTests(NamespaceLab lab) : IClassFixture<NamespaceLab>
{
    private static PluginRun Check(params string[] args) => Support.Plugin.Native(args);

    [NamespaceFact]
    public void A_full_namespace_makes_the_whole_check_critical_and_is_named_with_its_figures()
    {
        lab.Full.Refusal.ShouldBe("EADDRNOTAVAIL");
        lab.Full.Connections.ShouldBe(10);

        // -v lists every namespace: other tests' namespaces (oracle scenarios at 100%) may run
        // beside these and fill the first ten lines of the default listing.
        var run = Check("--all-namespaces", "-v");
        run.Stderr.ShouldBeEmpty();
        run.ExitCode.ShouldBe(2, run.Stdout);
        run.FirstLine.ShouldStartWith($"EPHEMERAL PORTS CRITICAL - namespace netns {lab.Full.Namespace}: busiest TCP tuple 127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10 ports (100%), new connections to it fail now");
        run.Perf["tcp_busiest_used"].ShouldBe(lab.Full.Connections);
        run.Perf["capacity"].ShouldBe(10);
        run.Perf["namespaces"].ShouldBeGreaterThanOrEqualTo(4, "the host's own and the three made here");
        run.Perf["namespaces_critical"].ShouldBeGreaterThanOrEqualTo(1);
        run.Perf["namespaces_warning"].ShouldBeGreaterThanOrEqualTo(1);
        run.Stdout.ShouldContain($"  netns {lab.Warm.Namespace}: WARNING 75%");
        run.Stdout.ShouldContain($"  netns {lab.Half.Namespace}: OK 50%");
        run.Stdout.ShouldContain("  host: ");
    }

    [NamespaceFact]
    public void Prometheus_gets_a_series_per_namespace_labelled_with_name_and_inode()
    {
        var run = Check("--all-namespaces", "--format", "prometheus");
        run.Stderr.ShouldBeEmpty();
        var full = EphemeralPorts.Acquisition.Namespaces.NamespaceFinder.Inode($"/run/netns/{lab.Full.Namespace}")!.Value;
        var warm = EphemeralPorts.Acquisition.Namespaces.NamespaceFinder.Inode($"/run/netns/{lab.Warm.Namespace}")!.Value;
        run.Stdout.ShouldContain($"ephemeral_ports_namespace_state{{namespace=\"netns {lab.Full.Namespace}\",inode=\"{full}\"}} 2\n");
        run.Stdout.ShouldContain($"ephemeral_ports_namespace_tcp_busiest_ratio{{namespace=\"netns {lab.Full.Namespace}\",inode=\"{full}\"}} 1\n");
        run.Stdout.ShouldContain($"ephemeral_ports_namespace_state{{namespace=\"netns {lab.Warm.Namespace}\",inode=\"{warm}\"}} 1\n");
        run.Stdout.ShouldContain($"ephemeral_ports_namespace_tcp_busiest_ratio{{namespace=\"netns {lab.Warm.Namespace}\",inode=\"{warm}\"}} 0.75\n");
        run.Stdout.ShouldContain("ephemeral_ports_namespace_series_dropped 0\n");
        System.Text.RegularExpressions.Regex.Matches(run.Stdout, "^# TYPE ephemeral_ports_namespace_state gauge$", System.Text.RegularExpressions.RegexOptions.Multiline).Count.ShouldBe(1, "one family, a sample per namespace");
        run.Stdout.ShouldContain("ephemeral_ports_tcp_busiest_ratio 1\n", Case.Sensitive, "the worst namespace's figures as before");
    }

    [NamespaceFact]
    public void The_host_namespace_alone_is_not_critical_while_a_container_is()
    {
        // The test's own namespace is idle: the CRITICAL above came from the namespace, not from here.
        var own = Check();
        own.ExitCode.ShouldBeLessThan(2, own.Stdout);
        own.Stdout.ShouldNotContain("127.0.0.1:5000 uses 10 of 10");
    }

    [NamespaceFact]
    public void Netns_by_name_and_pid_check_that_namespace_only()
    {
        var byName = Check("--netns", lab.Warm.Namespace);
        byName.ExitCode.ShouldBe(1, byName.Stdout);
        byName.FirstLine.ShouldStartWith($"EPHEMERAL PORTS WARNING - namespace netns {lab.Warm.Namespace}: busiest TCP tuple 127.0.0.1 -> 127.0.0.1:5000 uses 15 of 20 ports (75%)");
        byName.Perf.ContainsKey("namespaces").ShouldBeFalse();

        var byPid = Check("--pid", lab.Half.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        byPid.ExitCode.ShouldBe(0, byPid.Stdout);
        byPid.Perf["tcp_busiest_used"].ShouldBe(5);
        byPid.Perf["capacity"].ShouldBe(10);
        byPid.FirstLine.ShouldContain($"namespace netns {lab.Half.Namespace}:");

        var byPath = Check("--netns", $"/proc/{lab.Full.Pid}/ns/net", "--source", "proc");
        byPath.ExitCode.ShouldBe(2, byPath.Stdout);
        byPath.Perf["tcp_busiest_used"].ShouldBe(10, "the /proc reader inside the namespace reads /proc/thread-self/net");
    }

    [NamespaceFact]
    public void A_namespace_without_a_name_is_called_by_its_process()
    {
        using var sleeper = Process.Start("unshare", "-n sleep 60")!;
        try
        {
            // unshare execs sleep in the new namespace: same pid. Wait until it has.
            for (var i = 0; i < 100 && File.ReadAllText($"/proc/{sleeper.Id}/comm").Trim() != "sleep"; i++)
            {
                Thread.Sleep(20);
            }

            var run = Check("--pid", sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            run.ExitCode.ShouldBe(0, run.Stdout);
            run.FirstLine.ShouldStartWith($"EPHEMERAL PORTS OK - namespace sleep (pid {sleeper.Id}): ");
            run.Perf["capacity"].ShouldBe(28232, "a new namespace starts with the default range");
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
        }
    }

    [NamespaceFact]
    public void Processes_names_the_holder_with_its_count()
    {
        var run = Check("--netns", lab.Full.Namespace, "--processes");
        run.Stdout.ShouldContain($"    held by pid {lab.Full.Pid} (python3) {lab.Full.Connections}");
        var json = Check("--netns", lab.Full.Namespace, "--processes", "--format", "json");
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
        var holder = doc.RootElement.GetProperty("topDestinations")[0].GetProperty("holders")[0];
        holder.GetProperty("pid").GetInt32().ShouldBe(lab.Full.Pid);
        holder.GetProperty("command").GetString().ShouldBe("python3");
        holder.GetProperty("sockets").GetInt32().ShouldBe(lab.Full.Connections);
    }

    [NamespaceFact]
    public void Unprivileged_says_what_it_skipped_and_never_claims_it_checked_it()
    {
        // Without the privilege to enter namespaces, --all-namespaces would look at next to
        // nothing: UNKNOWN at once, with the fix, whatever the namespaces hold.
        var all = Support.Plugin.Native(["--all-namespaces"], runAs: "nobody");
        all.ShouldBeOneUnknownLine("--all-namespaces as nobody");
        all.FirstLine.ShouldBe("EPHEMERAL PORTS UNKNOWN - --all-namespaces needs root (CAP_SYS_ADMIN to enter namespaces, CAP_SYS_PTRACE to find them), "
            + "this process has not: run it through sudo with the shipped rule (icinga/sudoers), or check this namespace alone without --all-namespaces");

        var one = Support.Plugin.Native(["--netns", lab.Full.Namespace], runAs: "nobody");
        one.ShouldBeOneUnknownLine("a namespace nobody may not enter");
        one.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - no network namespace could be read: netns {lab.Full.Namespace} (setns: permission denied (needs root))\n");

        // Root's holder in this namespace is the busiest tuple; nobody may not read root's fds.
        var processes = Support.Plugin.Native(["--processes", "-v"], runAs: "nobody");
        processes.ExitCode.ShouldBeLessThan(3);
        processes.Stdout.ShouldContain("    held by no process found");
        processes.Stdout.ShouldMatch(@"processes: the open files of \d+ processes could not be read \(other users', needs root\)");
        var asRoot = Check("--processes", "-v");
        asRoot.Stdout.ShouldContain($"    held by pid {lab.HostHolder.Id} (python3) 20");
    }

    [NamespaceFact]
    public void A_live_proc_of_another_namespace_is_read_as_that_namespace_or_refused()
    {
        // A host's /proc seen from a container without host networking: its net/ is a link to
        // self/net and its sys/net/* are the reader's own. Here the "container" is the full
        // namespace and the "host" the test's own namespace (20 connections of root's holder).
        var tree = Directory.CreateTempSubdirectory("cep-hostproc-").FullName;
        File.SetUnixFileMode(tree, (UnixFileMode)0b111_101_101);
        var binary = SharedBinary();
        try
        {
            PluginRun InFull(string? runAs, params string[] args)
            {
                var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
                var plugin = string.Join(' ', args.Select(a => $"'{a}'"));
                var asUser = runAs is null ? string.Empty : $"setpriv --reuid={runAs} --init-groups -- ";
                foreach (var a in new[] { "-m", "--propagation", "private", "sh", "-c", $"mount --bind /proc {tree} && exec ip netns exec {lab.Full.Namespace} {asUser}{binary} {plugin}" })
                {
                    start.ArgumentList.Add(a);
                }

                return Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
            }

            var own = NamespaceFinderInode("/proc/thread-self/ns/net");
            var run = InFull(null, "--proc-root", tree, "-v", "--processes");
            run.Stderr.ShouldBeEmpty();
            run.ExitCode.ShouldBe(0, run.Stdout);
            run.FirstLine.ShouldNotContain("10 of 10", Case.Sensitive, "the reader's own (full) namespace must not be reported as the tree's");
            run.Stdout.ShouldContain($"network namespace read: net:[{own}] ");
            run.Stdout.ShouldContain($"    held by pid {lab.HostHolder.Id} (python3) 20");

            var refused = InFull("nobody", "--proc-root", tree);
            refused.ShouldBeOneUnknownLine("nobody may not enter the tree's namespace");
            refused.FirstLine.ShouldContain($"--proc-root {tree} ");
            refused.FirstLine.ShouldContain("host networking");

            // The same tree read in its own namespace is read as it is, and -v says which one.
            var plain = Check("--proc-root", "/proc", "-v");
            plain.Stdout.ShouldContain($"network namespace read: net:[{own}] (this check's own)");
        }
        finally
        {
            Directory.Delete(tree);
            Directory.Delete(Path.GetDirectoryName(binary)!, recursive: true);
        }
    }

    [NamespaceFact]
    public void Processes_says_when_hidepid_hid_the_holders_instead_of_blaming_no_process()
    {
        // A procfs instance of its own (Linux 5.8+ makes one per mount) with hidepid=2, mounted
        // over /proc in a private mount namespace: the host's /proc keeps its options.
        var binary = SharedBinary();
        try
        {
            var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-m", "--propagation", "private", "sh", "-c", $"mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=nobody --init-groups -- {binary} --processes -v" })
            {
                start.ArgumentList.Add(a);
            }

            var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
            run.Stderr.ShouldBeEmpty();
            run.ExitCode.ShouldBeLessThan(3, run.Stdout);
            run.Stdout.ShouldNotContain("held by no process found");
            run.Stdout.ShouldContain("held by no process this user can see (/proc is mounted with hidepid=");
            run.Stdout.ShouldMatch(@"processes: /proc is mounted with hidepid=(2|invisible), other users' processes are hidden from this user");
            File.ReadAllText("/proc/self/mountinfo").ShouldNotContain("hidepid", Case.Sensitive, "the host's /proc is left as it was");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(binary)!, recursive: true);
        }
    }

    private static ulong NamespaceFinderInode(string path) => EphemeralPorts.Acquisition.Namespaces.NamespaceFinder.Inode(path)!.Value;

    /// <summary>A copy of the binary every user may run (the clone may be below /root).</summary>
    private static string SharedBinary()
    {
        var dir = Directory.CreateTempSubdirectory("cep-bin-ns-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        var copy = Path.Combine(dir, "check_ephemeral_ports");
        File.Copy(Repo.NativeBinary, copy);
        File.SetUnixFileMode(copy, (UnixFileMode)0b111_101_101);
        return copy;
    }
}
