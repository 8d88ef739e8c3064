using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The timeout covers writing the answer too: a reader that stops reading (a full pipe) or a
/// writer that hangs gets the timeout state within <c>-t</c>, not a plugin stuck forever.
/// </summary>
public class DeliveryTimeoutTests
{
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [InlineData("1", 3)]
    [InlineData("1:critical", 2)]
    [InlineData("1:ok", 0)]
    public void A_stdout_nobody_reads_ends_at_the_timeout_with_its_state(string timeout, int exitCode)
    {
        // A pipe filled to the brim before the plugin starts: its first write blocks.
        const string script = """
            import os, subprocess, sys, time
            r, w = os.pipe()
            os.set_blocking(w, False)
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(w, b"x" * size)
                except BlockingIOError:
                    pass
            os.set_blocking(w, True)
            start = time.monotonic()
            p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, timeout=30)
            print(p.returncode, f"{time.monotonic() - start:.2f}", repr(p.stderr.decode()))
            """;
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", script, Repo.NativeBinary, "--proc-root", Sound, "-t", timeout })
        {
            start.ArgumentList.Add(a);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        run.Stderr.ShouldBeEmpty();
        var fields = run.Stdout.Trim().Split(' ', 3);
        fields[0].ShouldBe(exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture), run.Stdout);
        double.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture).ShouldBeLessThan(3.0, "the plugin must end at its timeout");
        fields[2].ShouldBe("''", "nothing on stderr");
    }

    [Fact]
    public void A_writer_that_hangs_in_process_gets_the_timeout_state()
    {
        using var stuck = new StuckWriter();
        var clock = Stopwatch.StartNew();
        var code = EphemeralPorts.Cli.PluginMain.Run(["--proc-root", Sound, "-t", "1:warning"], stuck);
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(3));
        code.ShouldBe(1);
    }

    private sealed class StuckWriter : TextWriter
    {
        private readonly ManualResetEventSlim _never = new();

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value) => _never.Wait(TimeSpan.FromSeconds(30));

        public override void Write(string? value) => _never.Wait(TimeSpan.FromSeconds(30));

        protected override void Dispose(bool disposing)
        {
            _never.Set();
            _never.Dispose();
            base.Dispose(disposing);
        }
    }
}
