using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Each directory under tests/fixtures is a scenario: a mini /proc tree (proc/), the arguments
/// (args, one per line; --proc-root proc is added), the expected stdout and exit code. Every
/// scenario runs in-process and against the published native binary, with the same expectations.
/// `UPDATE_FIXTURES=1` rewrites the expected files from the in-process run; review the diff.
/// </summary>
public class FixtureTests
{
    private static readonly HashSet<string> NotScenarios = new(StringComparer.Ordinal) { "conntrack", "natrules", "zabbix-nat" };

    public static TheoryData<string> Scenarios()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Repo.Fixtures).Order(StringComparer.Ordinal))
        {
            // Captured kernel data for the parser tests of one kind (or plugin documents for the
            // Zabbix tests), not a /proc scenario.
            if (NotScenarios.Contains(Path.GetFileName(dir)))
            {
                continue;
            }

            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    private static string[] Args(string scenario)
    {
        var file = Path.Combine(Repo.Fixtures, scenario, "args");
        File.Exists(file).ShouldBeTrue($"{file} is missing");
        return ["--proc-root", "proc", .. File.ReadAllLines(file).Where(l => l.Length > 0)];
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void In_process(string scenario)
    {
        var dir = Path.Combine(Repo.Fixtures, scenario);
        var args = Args(scenario);
        args[1] = Path.Combine(dir, "proc");
        var run = Support.Plugin.InProcess(args);
        // Messages name files under the proc root; make them read as in the native run (cwd = scenario).
        var stdout = run.Stdout.Replace(dir + Path.DirectorySeparatorChar, string.Empty, StringComparison.Ordinal);
        if (Environment.GetEnvironmentVariable("UPDATE_FIXTURES") == "1")
        {
            File.WriteAllText(Path.Combine(dir, "expected_stdout"), stdout);
            File.WriteAllText(Path.Combine(dir, "expected_exit"), run.ExitCode + "\n");
        }

        Expect(scenario, new PluginRun(run.ExitCode, stdout, run.Stderr));
    }

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Native_binary(string scenario) =>
        Expect(scenario, Support.Plugin.Native(Args(scenario), workingDirectory: Path.Combine(Repo.Fixtures, scenario)));

    private static void Expect(string scenario, PluginRun run)
    {
        var dir = Path.Combine(Repo.Fixtures, scenario);
        var expectedStdout = File.ReadAllText(Path.Combine(dir, "expected_stdout"));
        var expectedExit = int.Parse(File.ReadAllText(Path.Combine(dir, "expected_exit")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        run.Stdout.ShouldBe(expectedStdout, $"stdout of scenario {scenario}");
        run.ExitCode.ShouldBe(expectedExit, $"exit code of scenario {scenario}");
        run.Stderr.ShouldBeEmpty();
        var args = Args(scenario);
        if (!args.Contains("--format") && !args.Any(a => a.StartsWith("-v", StringComparison.Ordinal)))
        {
            run.Stdout.Length.ShouldBeLessThan(1024, "the default output fits an NRPE v2 packet");
        }

        if (scenario.StartsWith("error-", StringComparison.Ordinal))
        {
            run.ShouldBeOneUnknownLine(scenario);
        }
    }
}
