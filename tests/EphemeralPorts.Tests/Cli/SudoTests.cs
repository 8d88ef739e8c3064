using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The plugin under a real sudo, run by an unprivileged user. With a careless rule (a wildcard
/// after the command) the user chooses every argument: the plugin itself must then refuse to
/// write or read, for that user, what they could not write or read themselves. The shipped
/// example (icinga/sudoers) pins the argument lists, so those options cannot be given at all.
/// </summary>
public sealed class SudoTests : IDisposable
{
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");
    private readonly string _rootOnly;

    public SudoTests()
    {
        // A directory only root may enter, with a secret in it, as /root or /etc/ssl/private.
        _rootOnly = Directory.CreateTempSubdirectory("cep-root-only-").FullName;
        File.SetUnixFileMode(_rootOnly, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string Secret(string name = "secret")
    {
        var path = Path.Combine(_rootOnly, name);
        File.WriteAllText(path, "TOPSECRET-key-material\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    private static ThrowawayUser WithWildcardRule()
    {
        var user = new ThrowawayUser("sudo");
        user.AllowSudo($"{user.Name} ALL=(root) NOPASSWD: {user.Binary} *\n");
        return user;
    }

    [RootFact]
    public void The_rule_works_for_what_the_user_may_do()
    {
        using var user = WithWildcardRule();
        var run = user.Sudo("--proc-root", Sound);
        run.Stderr.ShouldBeEmpty();
        run.ExitCode.ShouldBe(1, run.Stdout);
        run.FirstLine.ShouldStartWith("EPHEMERAL PORTS WARNING - ");
    }

    [RootFact]
    public void Output_onto_a_root_only_file_is_refused()
    {
        using var user = WithWildcardRule();
        var victim = Secret("victim");
        var run = user.Sudo("--proc-root", Sound, "--output", victim);
        run.ShouldBeOneUnknownLine("--output as the sudo user");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --output {victim}: cannot write: permission denied in {_rootOnly}\n");
        File.ReadAllText(victim).ShouldBe("TOPSECRET-key-material\n");
    }

    [RootFact]
    public void Output_into_a_directory_the_user_can_write_is_theirs()
    {
        using var user = WithWildcardRule();
        var dir = Directory.CreateTempSubdirectory("cep-user-out-").FullName;
        try
        {
            Command.MustSucceed("chown", $"{user.Uid}:{user.Gid}", dir);
            var target = Path.Combine(dir, "ports.prom");
            var run = user.Sudo("--proc-root", Sound, "--format", "prometheus", "--output", target);
            run.Stdout.ShouldBeEmpty();
            run.Stderr.ShouldBeEmpty();
            File.ReadAllText(target).ShouldContain("ephemeral_ports_state 1");
            File.GetUnixFileMode(target).ShouldBe((UnixFileMode)0b110_100_100);
            File.GetUnixFileMode(dir).ShouldNotBe(UnixFileMode.None);
            Stat(target).ShouldBe($"{user.Uid}:{user.Gid}", "written as the user who ran sudo");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [RootFact]
    public void A_proc_root_whose_sysctl_links_to_a_root_only_secret_discloses_nothing()
    {
        using var user = WithWildcardRule();
        using var tree = TempProc.CopyOf(Sound);
        var range = tree.PathOf("sys/net/ipv4/ip_local_port_range");
        File.Delete(range);
        File.CreateSymbolicLink(range, Secret());
        var run = user.Sudo("--proc-root", tree.Root);
        run.ShouldBeOneUnknownLine("--proc-root as the sudo user");
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {range}: a symbolic link leads out of the tree\n");
    }

    [RootFact]
    public void A_proc_root_holding_a_hard_link_to_a_root_only_secret_discloses_nothing()
    {
        // Where protected_hardlinks is off a user can link any file into their tree; the link
        // stays inside the tree, so only opening it as the user refuses it.
        using var user = WithWildcardRule();
        using var tree = TempProc.CopyOf(Sound);
        var range = tree.PathOf("sys/net/ipv4/ip_local_port_range");
        File.Delete(range);
        var secret = Secret();
        Command.MustSucceed("ln", secret, range);
        var run = user.Sudo("--proc-root", tree.Root);
        run.ShouldBeOneUnknownLine("hard link as the sudo user");
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {range}: permission denied\n");
    }

    [RootFact]
    public void A_proc_root_the_user_cannot_enter_is_refused()
    {
        using var user = WithWildcardRule();
        var run = user.Sudo("--proc-root", _rootOnly);
        run.ShouldBeOneUnknownLine("unreachable --proc-root");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --proc-root {_rootOnly}: permission denied\n");
    }

    [NamespaceFact]
    public void A_netns_path_the_user_cannot_reach_is_refused()
    {
        // A namespace file bind-mounted into a directory only root may enter: root could enter it,
        // the user cannot even see it, so the plugin must not enter it for them.
        using var user = WithWildcardRule();
        var name = $"cep-hidden-{Environment.ProcessId}";
        var hidden = Path.Combine(_rootOnly, "ns");
        Command.MustSucceed("ip", "netns", "add", name);
        try
        {
            File.WriteAllText(hidden, string.Empty);
            Command.MustSucceed("mount", "--bind", $"/run/netns/{name}", hidden);
            try
            {
                Support.Plugin.Native(["--netns", hidden]).ExitCode.ShouldBe(0, "root itself may check it");
                var run = user.Sudo("--netns", hidden);
                run.ShouldBeOneUnknownLine("--netns as the sudo user");
                run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --netns {hidden}: {hidden}: permission denied to uid {user.Uid} (who ran sudo)\n");
            }
            finally
            {
                Command.MustSucceed("umount", hidden);
            }
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "delete", name);
        }
    }

    [RootFact]
    public void The_shipped_rule_pins_every_argument_list()
    {
        using var user = new ThrowawayUser("pin");
        var example = File.ReadAllText(Path.Combine(Repo.Root, "icinga", "sudoers", "check_ephemeral_ports"));
        example.ShouldNotContain("*", Case.Sensitive, "no wildcard in the shipped rule");
        var rules = example
            .Replace("/usr/lib/nagios/plugins/check_ephemeral_ports", user.Binary, StringComparison.Ordinal)
            .Replace("\nnagios ALL", $"\n{user.Name} ALL", StringComparison.Ordinal)
            .Replace("\nzabbix ALL", "\n#zabbix ALL", StringComparison.Ordinal);
        user.AllowSudo(rules);
        user.MayRun("--all-namespaces", "-w", "70", "-c", "85").ShouldBeTrue();
        user.MayRun("--processes", "-w", "70", "-c", "85").ShouldBeTrue();
        user.MayRun("--source", "bpf", "-w", "70", "-c", "85").ShouldBeTrue();
        user.MayRun("--all-namespaces", "-w", "70", "-c", "85", "--output", "/etc/passwd").ShouldBeFalse();
        user.MayRun("--all-namespaces", "--proc-root", "/tmp/x", "-w", "70", "-c", "85").ShouldBeFalse();
        user.MayRun("--netns", "/tmp/x").ShouldBeFalse();

        // The plain check as root (source-NAT tuples need CAP_NET_ADMIN): no argument, and "" lets
        // no argument be added to it.
        user.MayRun().ShouldBeTrue();
        user.MayRun("-w", "70", "-c", "85").ShouldBeTrue();
        user.MayRun("--format", "json").ShouldBeTrue();
        user.MayRun("-v").ShouldBeFalse();
        user.MayRun("--ignore-nat").ShouldBeFalse();
        user.MayRun("--format", "json", "--output", "/etc/passwd").ShouldBeFalse();
        user.MayRun("--output", "/etc/passwd").ShouldBeFalse();
    }

    private static string Stat(string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u:%g", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        return Support.Plugin.Run(start, TimeSpan.FromSeconds(10)).Stdout.Trim();
    }

    public void Dispose() => Directory.Delete(_rootOnly, recursive: true);
}
