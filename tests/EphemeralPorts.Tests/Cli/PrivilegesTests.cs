using System.Diagnostics;
using EphemeralPorts.Cli;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Whom a privileged run acts for, and acting as them: sudo's SUDO_UID/SUDO_GID for root, the
/// real user for a setuid or file-capability binary (whose SUDO_* the caller could forge), and a
/// switch of credentials that stays on one thread and is undone.
/// </summary>
public sealed class PrivilegesTests : IDisposable
{
    private const uint Nobody = 65534;
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");
    private readonly string _rootOnly = Directory.CreateTempSubdirectory("cep-priv-").FullName;

    public PrivilegesTests() => File.SetUnixFileMode(_rootOnly, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [RootFact]
    public void Under_sudo_the_invoker_is_the_sudo_user_with_their_groups()
    {
        var user = Privileges.Invoker(Env(("SUDO_UID", "65534"), ("SUDO_GID", "65534")))!;
        user.Uid.ShouldBe(Nobody);
        user.Gid.ShouldBe(Nobody);
        user.Groups.ShouldContain(Nobody);
        user.Groups.ShouldNotContain(0u);
    }

    [RootFact]
    public void Root_without_sudo_or_sudo_to_root_acts_for_itself()
    {
        Privileges.Invoker(Env()).ShouldBeNull();
        Privileges.Invoker(Env(("SUDO_UID", "0"), ("SUDO_GID", "0"))).ShouldBeNull();
    }

    [RootFact]
    public void A_garbled_sudo_id_is_refused()
    {
        Should.Throw<CheckException>(() => Privileges.Invoker(Env(("SUDO_UID", "-1")))).Message.ShouldBe("SUDO_UID '-1' is not a user id");
        Should.Throw<CheckException>(() => Privileges.Invoker(Env(("SUDO_UID", "65534")))).Message.ShouldBe("SUDO_GID '' is not a group id (SUDO_UID is 65534)");
        var run = Support.Plugin.InProcessWith(Env(("SUDO_UID", "x")), "--proc-root", Sound);
        run.ShouldBeOneUnknownLine("SUDO_UID x");
    }

    [RootFact]
    public void Acting_as_a_user_changes_this_thread_only_and_is_undone()
    {
        var secret = Path.Combine(_rootOnly, "secret");
        File.WriteAllText(secret, "TOPSECRET\n");
        var user = new ActingUser(Nobody, Nobody, [Nobody], "a test");
        var before = Credentials.CurrentGroups();
        var other = string.Empty;

        // A thread started before the switch (one started inside would inherit the credentials,
        // as clone(2) copies them) reads the secret while this one acts as nobody.
        using var inside = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            inside.Wait();
            other = File.ReadAllText(secret);
        });
        thread.Start();
        Credentials.As(user, () =>
        {
            Should.Throw<UnauthorizedAccessException>(() => File.ReadAllText(secret));
            Credentials.CurrentGroups().ShouldBe([Nobody]);
            inside.Set();
            thread.Join();
            return 0;
        });
        other.ShouldBe("TOPSECRET\n");
        File.ReadAllText(secret).ShouldBe("TOPSECRET\n", "this thread is root again");
        Credentials.CurrentGroups().ShouldBe(before);
    }

    [RootFact]
    public void A_setuid_copy_acts_for_its_real_user_and_ignores_a_forged_sudo_uid()
    {
        var binary = Copy("setuid");
        File.SetUnixFileMode(binary, (UnixFileMode)0b100_111_101_101);
        using var tree = HardLinkedSecret();
        var run = RunAsNobody(binary, [("SUDO_UID", "0"), ("SUDO_GID", "0")], "--proc-root", tree.Root);
        run.ShouldBeOneUnknownLine("setuid");
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("sys/net/ipv4/ip_local_port_range")}: permission denied\n");
        var output = RunAsNobody(binary, [("SUDO_UID", "0"), ("SUDO_GID", "0")], "--proc-root", Sound, "--output", Path.Combine(_rootOnly, "out.prom"));
        output.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --output {Path.Combine(_rootOnly, "out.prom")}: cannot write: permission denied in {_rootOnly}\n");
    }

    [RootFact]
    public void A_copy_with_file_capabilities_acts_for_its_user()
    {
        var binary = Copy("caps");
        Command.MustSucceed("setcap", "cap_dac_override,cap_dac_read_search+ep", binary);
        using var tree = HardLinkedSecret();
        var run = RunAsNobody(binary, [], "--proc-root", tree.Root);
        run.ShouldBeOneUnknownLine("file capabilities");
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("sys/net/ipv4/ip_local_port_range")}: permission denied\n");
    }

    // A tree readable by nobody whose range sysctl is a hard link to a root-only secret.
    private TempProc HardLinkedSecret()
    {
        var tree = TempProc.CopyOf(Sound);
        var range = tree.PathOf("sys/net/ipv4/ip_local_port_range");
        File.Delete(range);
        var secret = Path.Combine(_rootOnly, "secret");
        File.WriteAllText(secret, "TOPSECRET-first-line\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead);
        Command.MustSucceed("ln", secret, range);
        return tree;
    }

    private string Copy(string name)
    {
        var dir = Path.Combine(Path.GetDirectoryName(_rootOnly)!, Path.GetFileName(_rootOnly) + "-" + name);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        var binary = Path.Combine(dir, "check_ephemeral_ports");
        File.Copy(Repo.NativeBinary, binary, overwrite: true);
        File.SetUnixFileMode(binary, (UnixFileMode)0b111_101_101);
        return binary;
    }

    private static PluginRun RunAsNobody(string binary, (string Name, string Value)[] env, params string[] args)
    {
        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var a in new[] { $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "--", binary }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (name, value) in env)
        {
            start.Environment[name] = value;
        }

        return Support.Plugin.Run(start, TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        foreach (var dir in Directory.GetDirectories(Path.GetDirectoryName(_rootOnly)!, Path.GetFileName(_rootOnly) + "*"))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
