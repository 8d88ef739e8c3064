using System.Diagnostics;
using System.Text;
using EphemeralPorts.Cli;

namespace EphemeralPorts.Tests.Support;

/// <summary>Where things are: the repository, its fixtures, and the published native binary.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    /// <summary>
    /// The published native binary. build.sh test publishes it first and passes its path; a bare
    /// `dotnet test` finds it in dist/. Tests of the binary fail (not skip) when it is missing.
    /// </summary>
    public static string NativeBinary
    {
        get
        {
            var path = Environment.GetEnvironmentVariable("CHECK_EPHEMERAL_PORTS_BIN") is { Length: > 0 } fromEnv
                ? fromEnv
                : Path.Combine(Root, "dist", "check_ephemeral_ports");
            File.Exists(path).ShouldBeTrue($"the native binary {path} is missing: run ./build.sh first");
            return path;
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "check_ephemeral_ports.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("check_ephemeral_ports.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>One run of the plugin: what it printed and how it exited.</summary>
public sealed record PluginRun(int ExitCode, string Stdout, string Stderr)
{
    public string FirstLine => Stdout.Split('\n')[0];

    /// <summary>The perfdata of the first line as label → value (unit stripped: % and the counters' c).</summary>
    public IReadOnlyDictionary<string, double> Perf =>
        FirstLine.Contains(" | ", StringComparison.Ordinal)
            ? FirstLine[(FirstLine.IndexOf(" | ", StringComparison.Ordinal) + 3)..]
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(item => item.Split('='))
                .ToDictionary(kv => kv[0].Trim('\''), kv => double.Parse(kv[1].Split(';')[0].TrimEnd('%', 'c'), System.Globalization.CultureInfo.InvariantCulture))
            : new Dictionary<string, double>();

    /// <summary>Asserts the one-line UNKNOWN answer every bad input must get.</summary>
    public void ShouldBeOneUnknownLine(string because)
    {
        ExitCode.ShouldBe(3, because + ": " + Stdout);
        Stdout.ShouldStartWith("EPHEMERAL PORTS UNKNOWN - ", Case.Sensitive, because);
        Stdout.TrimEnd('\n').ShouldNotContain('\n', because);
        Stdout.ShouldNotContain("   at ", Case.Sensitive, because);
        Stderr.ShouldBeEmpty(because);
    }
}

/// <summary>Runs the plugin in-process (through <see cref="PluginMain.Run"/>) or as the native binary.</summary>
public static class Plugin
{
    public static PluginRun InProcess(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var code = PluginMain.Run(args, stdout);
        return new PluginRun(code, stdout.ToString(), string.Empty);
    }

    /// <summary>In-process with the environment given (SUDO_UID and the like) instead of the process's.</summary>
    public static PluginRun InProcessWith(Func<string, string?> environment, params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var code = PluginMain.Run(args, stdout, environment);
        return new PluginRun(code, stdout.ToString(), string.Empty);
    }

    public static PluginRun Native(string[] args, string? workingDirectory = null, string? runAs = null, TimeSpan? limit = null)
    {
        var binary = Repo.NativeBinary;
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            WorkingDirectory = workingDirectory ?? Repo.Root,
        };
        if (runAs is null)
        {
            start.FileName = binary;
        }
        else
        {
            // setpriv(1) drops to an unprivileged user without a login shell or PAM. The clone may
            // live below a directory that user cannot enter (/root): run a world-readable copy.
            start.FileName = "setpriv";
            foreach (var a in new[] { $"--reuid={runAs}", "--init-groups", "--", SharedBinary })
            {
                start.ArgumentList.Add(a);
            }
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Run(start, limit ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>A world-readable copy of the native binary that any user may run (the clone may be below /root).</summary>
    public static string SharedBinary => SharedCopy.Value;

    private static readonly Lazy<string> SharedCopy = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("cep-bin-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        var copy = Path.Combine(dir, "check_ephemeral_ports");
        File.Copy(Repo.NativeBinary, copy);
        File.SetUnixFileMode(copy, (UnixFileMode)0b111_101_101);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        return copy;
    });

    public static PluginRun Run(ProcessStartInfo start, TimeSpan limit)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{start.FileName} did not exit within {limit}");
        }

        return new PluginRun(process.ExitCode, stdout.Result, stderr.Result);
    }
}
