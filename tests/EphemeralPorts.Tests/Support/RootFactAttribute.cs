using System.Diagnostics;
using Xunit.Sdk;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace EphemeralPorts.Tests.Support;

/// <summary>
/// A test that needs root (to switch users, or to make network namespaces). Where it cannot run it
/// is reported as skipped with the reason, never passed silently. CI runs as root. It is in the
/// full tier only (<see cref="Tier"/>).
/// </summary>
[TraitDiscoverer(FullTierDiscoverer.TypeName, FullTierDiscoverer.AssemblyName)]
public sealed class RootFactAttribute : FactAttribute, ITraitAttribute
{
    public RootFactAttribute()
    {
        if (Environments.WhyNotRoot() is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// A kernel-oracle test: root and network namespaces (<c>unshare -n</c>) are both needed. It is in
/// the full tier only (<see cref="Tier"/>).
/// </summary>
[TraitDiscoverer(FullTierDiscoverer.TypeName, FullTierDiscoverer.AssemblyName)]
public sealed class NamespaceFactAttribute : FactAttribute, ITraitAttribute
{
    public NamespaceFactAttribute()
    {
        if ((Environments.WhyNotRoot() ?? Environments.WhyNoNamespaces()) is { } reason)
        {
            Skip = reason;
        }
    }
}

public static class Environments
{
    private static readonly Lazy<string?> NamespaceProbe = new(ProbeNamespaces);

    public static string? WhyNotRoot() =>
        Environment.UserName == "root" ? null : $"needs root (running as {Environment.UserName}); CI runs these as root";

    public static string? WhyNoNamespaces() => NamespaceProbe.Value;

    private static string? ProbeNamespaces()
    {
        try
        {
            var start = new ProcessStartInfo("unshare", "-n ip link set lo up") { RedirectStandardError = true, RedirectStandardOutput = true };
            using var probe = Process.Start(start)!;
            var error = probe.StandardError.ReadToEnd();
            probe.WaitForExit();
            return probe.ExitCode == 0 ? null : $"cannot make a network namespace here (unshare -n: {error.Trim()})";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return $"cannot make a network namespace here (unshare or ip missing: {e.Message})";
        }
    }
}
