using System.Text;
using CsCheck;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Random corruptions of valid socket tables and sysctl files (from the fixtures) against the
/// native binary: whatever the bytes, the answer is an exit code 0-3, one line when UNKNOWN, and
/// nothing on stderr. CsCheck generates the cases from a fixed seed (the same cases every run;
/// a failure prints the seed of the case that failed, to replay it).
/// </summary>
[Trait(Tier.Key, Tier.Full)]
public class CorruptionPropertyTests
{
    private const int Cases = 150;

    private static readonly string[] Scenarios = [.. Directory.GetDirectories(Repo.Fixtures)
        .Where(d => !Path.GetFileName(d).StartsWith("error-", StringComparison.Ordinal) && Directory.Exists(Path.Combine(d, "proc", "net")))
        .Order(StringComparer.Ordinal)];

    private static readonly string[] Files =
    [
        "net/tcp", "net/tcp6", "net/udp", "net/udp6",
        "sys/net/ipv4/ip_local_port_range", "sys/net/ipv4/ip_local_reserved_ports", "sys/net/ipv4/tcp_tw_reuse",
        "sys/net/ipv4/tcp_tw_reuse_delay", "sys/net/ipv4/tcp_timestamps", "sys/net/ipv4/tcp_fin_timeout",
    ];

    /// <summary>One edit of a file's bytes, at a position given as a fraction of its length.</summary>
    private sealed record Edit(int Kind, double At, double Span, byte[] Bytes)
    {
        public byte[] Apply(byte[] data)
        {
            var at = (int)(At * data.Length);
            var span = Math.Min((int)(Span * 64) + 1, data.Length - at);
            var list = data.ToList();
            switch (Kind)
            {
                case 0 when data.Length > 0 && at < data.Length: // overwrite bytes
                    for (var i = 0; i < Math.Min(Bytes.Length, data.Length - at); i++)
                    {
                        list[at + i] = Bytes[i];
                    }

                    break;
                case 1: // insert bytes
                    list.InsertRange(at, Bytes);
                    break;
                case 2 when span > 0: // delete a run
                    list.RemoveRange(at, span);
                    break;
                case 3: // truncate
                    list.RemoveRange(at, list.Count - at);
                    break;
                case 4 when span > 0: // duplicate a run many times (long lines, many lines)
                    var run = list.GetRange(at, span);
                    for (var i = 0; i < Bytes.Length * 8; i++)
                    {
                        list.InsertRange(at, run);
                    }

                    break;
                case 5 when data.Length > 0 && at < data.Length: // a digit becomes a large or odd number
                    list.InsertRange(at, Encoding.ASCII.GetBytes(Bytes.Length % 2 == 0 ? "99999999999999999999" : "-1"));
                    break;
            }

            return [.. list];
        }
    }

    private static readonly Gen<byte> Interesting = Gen.OneOf(Gen.Byte, Gen.OneOfConst((byte)0, (byte)'\n', (byte)' ', (byte)':', (byte)'-', (byte)',', (byte)'F', (byte)'0', (byte)0xFF, (byte)'\t'));

    private static readonly Gen<Edit> AnEdit =
        Gen.Select(Gen.Int[0, 5], Gen.Double[0, 1], Gen.Double[0, 1], Interesting.Array[1, 24], (k, a, s, b) => new Edit(k, a, s, b));

    private static readonly Gen<(int Scenario, int File, Edit[] Edits)> ACase =
        Gen.Select(Gen.Int[0, Scenarios.Length - 1], Gen.Int[0, Files.Length - 1], AnEdit.Array[1, 3]);

    [Fact]
    public void Any_corruption_of_a_table_or_sysctl_gives_a_plugin_answer() =>
        ACase.Sample(c =>
        {
            using var tree = TempProc.CopyOf(Path.Combine(Scenarios[c.Scenario], "proc"));
            var file = tree.PathOf(Files[c.File]);
            var data = File.Exists(file) ? File.ReadAllBytes(file) : [];
            foreach (var edit in c.Edits)
            {
                data = edit.Apply(data);
            }

            File.WriteAllBytes(file, data);
            var run = Support.Plugin.Native(["--proc-root", tree.Root, "-t", "5"], limit: TimeSpan.FromSeconds(20));
            var because = $"{Path.GetFileName(Scenarios[c.Scenario])} {Files[c.File]}: {run.Stdout}{run.Stderr}";
            run.ExitCode.ShouldBeInRange(0, 3, because);
            run.Stderr.ShouldBeEmpty(because);
            run.Stdout.ShouldNotContain("   at ", Case.Sensitive, because);
            run.Stdout.ShouldStartWith("EPHEMERAL PORTS ", Case.Sensitive, because);
            if (run.ExitCode == 3)
            {
                run.ShouldBeOneUnknownLine(because);
            }
        }, seed: "0N0XIzNsQ0O2", iter: Cases, threads: 1);
}
