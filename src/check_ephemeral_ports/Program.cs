using System.Text;
using EphemeralPorts.Cli;

// Standard output as a plain stream over descriptor 1 (StandardStreams.Output): Console.Out would
// first set up terminal handling (a pipe, signal handlers and a thread) that a plugin whose output
// goes to a pipe never needs. PluginMain writes and flushes it within the timeout; it is not
// flushed again here, where a reader that stopped reading would hang the exit.
int code;
try
{
    var stdout = new StreamWriter(StandardStreams.Output(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = false };
    code = PluginMain.Run(args, stdout);
}
catch (Exception e)
{
    // The last resort (PluginMain turns every failure it knows into UNKNOWN): still one plugin
    // line and exit 3, never the runtime's trace and 134.
    code = PluginMain.LastResort(e);
}

return StandardStreams.Exit(code);
