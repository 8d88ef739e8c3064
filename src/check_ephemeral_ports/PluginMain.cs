using System.Diagnostics;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Check;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;
using EphemeralPorts.Rendering;

namespace EphemeralPorts.Cli;

/// <summary>
/// One run of the plugin: parse the command line, run the check (<see cref="PortCheck"/> in
/// Core, which returns an outcome and never throws for a failed check), render it, deliver it.
/// Here only what belongs to the command line and to delivery becomes UNKNOWN. Returns the exit
/// code instead of exiting and writes only to the writer it is given (and flushes it), so tests
/// drive it in-process.
/// </summary>
public static class PluginMain
{
    /// <summary>
    /// However late the check answered, its answer gets this long to be written: a timeout
    /// message is written in microseconds where the output is not stuck.
    /// </summary>
    public static readonly TimeSpan MinimumDeliveryTime = TimeSpan.FromMilliseconds(250);

    public static int Run(IReadOnlyList<string> args, TextWriter stdout) => Run(args, stdout, Environment.GetEnvironmentVariable);

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, Func<string, string?> environment)
    {
        // The run's clock starts here: -t counts the parsing and the writing too.
        var clock = Stopwatch.StartNew();

        // Help, version and refused command lines are delivered with the default timeout: bound
        // only then, so a run binds its settings once.
        static Settings Defaults() => SettingsBinder.Bind(OptionTable.Defaults());
        Settings settings;
        ActingUser? invoker;
        try
        {
            // Who the files named on the command line are opened as (sudo's invoking user).
            invoker = Privileges.Invoker(environment);
            var invocation = ArgumentParser.Parse(args, invoker);
            if (invocation.Text is not null)
            {
                return Deliver(Defaults(), new RenderedOutput(invocation.Text, (int)ServiceState.Unknown), stdout, clock, toFile: false);
            }

            settings = invocation.Settings!;
        }
        catch (CheckException e)
        {
            // The arguments themselves are wrong, the format among them: plain plugin text.
            return Deliver(Defaults(), Unknown(Reasons.Say(e)), stdout, clock, toFile: false);
        }
        catch (Exception e)
        {
            // CommandLineParser's own failures: still one UNKNOWN line, never a stack trace.
            return Deliver(Defaults(), Unknown($"internal error: {e.GetType().Name}: {e.Message}"), stdout, clock, toFile: false);
        }

        CheckOutcome outcome;
        using (var run = new RunContext(new Host(settings.Check.Reading.ProcRoot, invoker), settings.Check.Timeout, clock))
        {
            outcome = Reasons.InOptionTerms(PortCheck.Run(settings.Check, run));
        }

        return Deliver(settings, Renderer.Render(outcome, settings.Format, settings.Verbosity), stdout, clock, toFile: settings.Output is not null, invoker);
    }

    /// <summary>
    /// What an exception that escaped <see cref="Run(IReadOnlyList{string}, TextWriter)"/> leaves
    /// (no memory, no thread): one UNKNOWN line written straight to descriptor 1, exit 3.
    /// </summary>
    public static int LastResort(Exception e)
    {
        try
        {
            var line = NagiosText.Line(ServiceState.Unknown, $"internal error: {e.GetType().Name}: {e.Message}");
            Native.Libc.WriteAll(1, System.Text.Encoding.UTF8.GetBytes(line));
        }
        catch (Exception)
        {
            // No memory even for the message (a tiny ulimit -v): a line that needs none.
            Native.Libc.WriteAll(1, "EPHEMERAL PORTS UNKNOWN - internal error: out of memory\n"u8);
        }

        return (int)ServiceState.Unknown;
    }

    private static RenderedOutput Unknown(string message) => new(NagiosText.Line(ServiceState.Unknown, message), (int)ServiceState.Unknown);

    /// <summary>
    /// Writes the output (to stdout, or <c>--output</c> as <paramref name="invoker"/>, and a
    /// refusal of the file to stdout) within what is left of the timeout, on a thread of its own:
    /// a reader that does not read, or a file system that does not answer, gets the timeout state
    /// and never a hang. Output stuck on stdout can say nothing more there: the exit code is the
    /// answer; a file that hangs is reported on stdout, within a short bound.
    /// </summary>
    private static int Deliver(Settings settings, RenderedOutput output, TextWriter stdout, Stopwatch clock, bool toFile, ActingUser? invoker = null)
    {
        var budget = settings.Check.Timeout - clock.Elapsed;
        budget = budget < MinimumDeliveryTime ? MinimumDeliveryTime : budget;
        var writer = Worker<int>.Start("deliver", () =>
        {
            if (toFile)
            {
                try
                {
                    AtomicFile.Write(settings.Output!, output.Text, invoker);
                    return output.ExitCode;
                }
                catch (CheckException e)
                {
                    var refused = Unknown(e.Message);
                    Write(stdout, refused.Text);
                    return refused.ExitCode;
                }
            }

            Write(stdout, output.Text);
            return output.ExitCode;
        });
        if (!writer.Wait(budget))
        {
            if (toFile)
            {
                var late = NagiosText.Line(settings.Check.TimeoutState, $"timed out after {settings.Check.Timeout.TotalSeconds:0} s while writing --output {settings.Output}");
                Worker<bool>.Start("deliver", () =>
                {
                    Write(stdout, late);
                    return true;
                }).Wait(MinimumDeliveryTime);
            }

            return (int)settings.Check.TimeoutState;
        }

        try
        {
            return writer.Result;
        }
        catch (IOException)
        {
            // stdout is gone (a closed pipe): nobody is left to read a message.
            return (int)ServiceState.Unknown;
        }
    }

    private static void Write(TextWriter stdout, string text)
    {
        stdout.Write(text);
        stdout.Flush();
    }
}
