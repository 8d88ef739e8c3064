using System.Text;
using EphemeralPorts.Cli;

// Standard output as a plain stream: Console.Out would first set up terminal handling (signal
// handlers and a thread) that a plugin whose output goes to a pipe never needs.
using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = false };
var code = PluginMain.Run(args, stdout);
stdout.Flush();
return code;
