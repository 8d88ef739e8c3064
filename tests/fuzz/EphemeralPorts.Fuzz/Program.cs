using EphemeralPorts.Fuzz;
using SharpFuzz;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// EphemeralPorts.Fuzz TARGET            run under afl-fuzz (SharpFuzz's fork server, input on stdin)
// EphemeralPorts.Fuzz TARGET FILE...    run the target once on each file (replay a finding)
if (args.Length == 0 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: EphemeralPorts.Fuzz {string.Join('|', Targets.All.Keys)} [FILE...]");
    return 2;
}

if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        target(File.ReadAllBytes(file));
        Console.WriteLine($"{file}: ok");
    }

    return 0;
}

Fuzzer.Run(stream =>
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    target(copy.ToArray());
});
return 0;
