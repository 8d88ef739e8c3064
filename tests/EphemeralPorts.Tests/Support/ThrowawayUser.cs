using System.Diagnostics;

namespace EphemeralPorts.Tests.Support;

/// <summary>
/// A system user made for one test class (useradd) with a sudoers file of its own, and a
/// root-owned copy of the native binary it may run; all removed again on dispose. Debian's sudo is
/// installed first where it is missing (the tests run as root).
/// </summary>
public sealed class ThrowawayUser : IDisposable
{
    private readonly List<string> _cleanup = [];

    public ThrowawayUser(string tag)
    {
        Name = $"cep-{tag}-{Environment.ProcessId % 100000}";
        EnsureSudo();
        Command.MustSucceed("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", Name);
        Uid = int.Parse(Output("id", "-u", Name).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Gid = int.Parse(Output("id", "-g", Name).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var dir = Directory.CreateTempSubdirectory("cep-sudo-bin-").FullName;
        _cleanup.Add(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        Binary = Path.Combine(dir, "check_ephemeral_ports");
        File.Copy(Repo.NativeBinary, Binary);
        File.SetUnixFileMode(Binary, (UnixFileMode)0b111_101_101);
        SudoersFile = $"/etc/sudoers.d/{Name}";
    }

    public string Name { get; }

    public int Uid { get; }

    public int Gid { get; }

    /// <summary>The binary the sudo rules name (root-owned, in a directory only root can write).</summary>
    public string Binary { get; }

    public string SudoersFile { get; }

    /// <summary>Installs <paramref name="rules"/> as this user's sudoers file, checked by visudo first.</summary>
    public void AllowSudo(string rules)
    {
        var staged = SudoersFile + ".new";
        File.WriteAllText(staged, rules);
        try
        {
            Command.MustSucceed("visudo", "-cf", staged);
            File.SetUnixFileMode(staged, UnixFileMode.UserRead | UnixFileMode.GroupRead);
            File.Move(staged, SudoersFile, overwrite: true);
        }
        finally
        {
            File.Delete(staged);
        }
    }

    /// <summary>The plugin run by this user through <c>sudo -n</c>.</summary>
    public PluginRun Sudo(params string[] args)
    {
        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var a in new[] { $"--reuid={Uid}", $"--regid={Gid}", "--init-groups", "--", "sudo", "-n", Binary }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }

        return Plugin.Run(start, TimeSpan.FromSeconds(60));
    }

    /// <summary>Whether sudo would let this user run the binary with <paramref name="args"/> (sudo -l -U, as root).</summary>
    public bool MayRun(params string[] args)
    {
        var start = new ProcessStartInfo("sudo") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-n", "-l", "-U", Name, Binary }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }

        return Plugin.Run(start, TimeSpan.FromSeconds(30)).ExitCode == 0;
    }

    private static void EnsureSudo()
    {
        if (File.Exists("/usr/bin/sudo") && File.Exists("/usr/sbin/visudo"))
        {
            return;
        }

        // build.sh installs it with the other test packages; this is for a bare `dotnet test`.
        foreach (var args in new[] { "update -qq", "install -y -qq --no-install-recommends sudo" })
        {
            var start = new ProcessStartInfo("apt-get", args) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            var run = Plugin.Run(start, TimeSpan.FromMinutes(5));
            run.ExitCode.ShouldBe(0, $"apt-get {args}: {run.Stderr}");
        }
    }

    private static string Output(params string[] args)
    {
        var start = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true };
        foreach (var a in args.Skip(1))
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return text;
    }

    public void Dispose()
    {
        File.Delete(SudoersFile);
        Command.MustSucceed("userdel", Name);
        foreach (var dir in _cleanup)
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
