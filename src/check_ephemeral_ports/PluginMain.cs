using EphemeralPorts.Check;
using EphemeralPorts.Plugin;
using EphemeralPorts.Rendering;

namespace EphemeralPorts.Cli;

/// <summary>
/// One run of the plugin: parse the command line, run the check (<see cref="PortCheck"/> in
/// Core, which returns an outcome and never throws for a failed check), render it, deliver it.
/// Here only what belongs to the command line and to delivery becomes UNKNOWN. Returns the exit
/// code instead of exiting and writes only to the writer it is given, so tests drive it in-process.
/// </summary>
public static class PluginMain
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        // The default reading does not depend on thresholds or output options: it starts before the
        // command line is parsed (CommandLineParser's reflection takes milliseconds), and is used
        // only if the parsed settings ask for that same reading.
        var early = OptionTable.MayChangeReading(args) ? null : PortCheck.Prefetch(SettingsBinder.Bind(OptionTable.Defaults()).Check.Reading);
        Settings settings;
        try
        {
            var invocation = ArgumentParser.Parse(args);
            if (invocation.Text is not null)
            {
                stdout.Write(invocation.Text);
                return (int)ServiceState.Unknown;
            }

            settings = invocation.Settings!;
        }
        catch (CheckException e)
        {
            // The arguments themselves are wrong, the format among them: plain plugin text.
            stdout.Write(NagiosText.Line(ServiceState.Unknown, e.Message));
            return (int)ServiceState.Unknown;
        }
        catch (Exception e)
        {
            // CommandLineParser's own failures: still one UNKNOWN line, never a stack trace.
            stdout.Write(NagiosText.Line(ServiceState.Unknown, $"internal error: {e.GetType().Name}: {e.Message}"));
            return (int)ServiceState.Unknown;
        }

        var outcome = PortCheck.Run(settings.Check, early);
        return Deliver(settings, Renderer.Render(outcome, settings.Format, settings.Verbosity), stdout);
    }

    private static int Deliver(Settings settings, RenderedOutput output, TextWriter stdout)
    {
        if (settings.Output is null)
        {
            stdout.Write(output.Text);
            return output.ExitCode;
        }

        try
        {
            AtomicFile.Write(settings.Output, output.Text);
            return output.ExitCode;
        }
        catch (CheckException e)
        {
            stdout.Write(NagiosText.Line(ServiceState.Unknown, e.Message));
            return (int)ServiceState.Unknown;
        }
    }
}
