using System.Reflection;

namespace EphemeralPorts.Plugin;

/// <summary>The plugin's version, from Directory.Build.props (one place for every artifact).</summary>
public static class ProductInfo
{
    public static string Version { get; } = Read();

    private static string Read()
    {
        var version = typeof(ProductInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus >= 0 ? version[..plus] : version;
    }
}
