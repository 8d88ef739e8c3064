using Xunit.Abstractions;
using Xunit.Sdk;

namespace EphemeralPorts.Tests.Support;

/// <summary>
/// The two tiers of tests (README, "Tests"). The quick tier, <c>./build.sh test quick</c>, is every
/// test not marked full: it runs in the test process alone, with no root, no network namespace, no
/// native binary and no other program. The full tier, <c>./build.sh test</c>, is every test. A test
/// leaves the quick tier by <c>[Trait(Tier.Key, Tier.Full)]</c> on itself or its class, or by being a
/// <see cref="RootFactAttribute"/> or <see cref="NamespaceFactAttribute"/>; TierTests holds each mark
/// to what the test does, both ways.
/// </summary>
public static class Tier
{
    public const string Key = "Tier";

    public const string Full = "full";

    /// <summary>The quick tier as a <c>dotnet test --filter</c>: a test without the trait passes it.</summary>
    public const string QuickFilter = Key + "!=" + Full;
}

/// <summary>
/// The trait of <see cref="RootFactAttribute"/> and <see cref="NamespaceFactAttribute"/>: root is
/// what the quick tier does without, so a test that needs it is in the full tier by being one.
/// </summary>
public sealed class FullTierDiscoverer : ITraitDiscoverer
{
    public const string TypeName = "EphemeralPorts.Tests.Support.FullTierDiscoverer";

    public const string AssemblyName = "EphemeralPorts.Tests";

    public IEnumerable<KeyValuePair<string, string>> GetTraits(IAttributeInfo traitAttribute) => [new(Tier.Key, Tier.Full)];
}
