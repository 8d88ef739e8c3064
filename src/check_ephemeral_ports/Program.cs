using EphemeralPorts.Cli;

var code = PluginMain.Run(args, Console.Out);
Console.Out.Flush();
return code;
