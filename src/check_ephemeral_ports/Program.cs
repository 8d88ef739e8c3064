using System.Text;
using EphemeralPorts.Cli;

// Standard output as a plain stream: Console.Out would first set up terminal handling (signal
// handlers and a thread) that a plugin whose output goes to a pipe never needs. PluginMain writes
// and flushes it within the timeout; it is not flushed again here, where a reader that stopped
// reading would hang the exit.
var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = false };
return PluginMain.Run(args, stdout);
