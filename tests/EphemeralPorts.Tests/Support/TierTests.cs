using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Xunit.Sdk;

namespace EphemeralPorts.Tests.Support;

/// <summary>
/// The quick tier (<see cref="Tier"/>) can neither take in a test that needs root, the native
/// binary or another program, nor leave out one that needs none of them. What a test needs is read
/// from its code: its fact attribute (RootFact, NamespaceFact), and whether anything of this
/// assembly it can reach (the test method, its class's constructors and Dispose, its fixtures, and
/// every helper, lambda, local function, iterator or static field initialiser those reach, through
/// their IL) touches <see cref="Repo.NativeBinary"/> or starts a <see cref="Process"/>. Whether it is
/// in the quick tier is asked of xunit: the traits of its test case, which `dotnet test --filter` reads.
/// </summary>
public class TierTests
{
    private const string NativeBinary = "the native binary";
    private const string AnotherProgram = "another program";

    private static readonly Assembly Tests = typeof(TierTests).Assembly;

    private static readonly MethodInfo NativeBinaryGetter = typeof(Repo).GetProperty(nameof(Repo.NativeBinary))!.GetMethod!;

    private const string FixHint = "[Trait(Tier.Key, Tier.Full)] on the test or its class";

    public sealed record Test(Type Class, MethodInfo Method)
    {
        public override string ToString() => $"{Class.Name}.{Method.Name}";
    }

    /// <summary>Every test method of this assembly, as xunit finds them: a [Fact] (a [Theory] is one) on a concrete class.</summary>
    public static IReadOnlyList<Test> All() =>
        [.. Tests.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
                .Where(m => m.IsDefined(typeof(FactAttribute), inherit: true))
                .Select(m => new Test(t, m)))];

    [Fact]
    public void No_test_that_needs_root_the_native_binary_or_another_program_is_in_the_quick_tier()
    {
        var wrong = All().Where(InQuickTier)
            .Select(t => (Test: t, Needs: Needs(t)))
            .Where(t => t.Needs.Count > 0)
            .Select(t => $"{t.Test} needs {string.Join(" and ", t.Needs.Select(n => $"{n.Key} ({n.Value})"))}, but is in the quick tier: give it {FixHint}")
            .ToList();
        wrong.ShouldBeEmpty();
    }

    [Fact]
    public void No_test_that_needs_none_of_them_is_left_out_of_the_quick_tier()
    {
        var wrong = All().Where(t => !InQuickTier(t) && Needs(t).Count == 0)
            .Select(t => $"{t} needs nothing beyond the test process, but is marked for the full tier only: take its mark off (or off its class, onto the tests that need one)")
            .ToList();
        wrong.ShouldBeEmpty();
    }

    [Fact]
    public void Both_tiers_have_tests_and_the_tier_trait_has_one_value()
    {
        var all = All();
        all.Count(InQuickTier).ShouldBeGreaterThan(50);
        all.Count(t => !InQuickTier(t)).ShouldBeGreaterThan(50);
        all.SelectMany(t => Traits(t).GetValueOrDefault(Tier.Key) ?? []).Distinct().ShouldBe([Tier.Full]);
        all.Where(t => t.Method.IsDefined(typeof(RootFactAttribute)) || t.Method.IsDefined(typeof(NamespaceFactAttribute)))
            .Where(InQuickTier).ShouldBeEmpty("a RootFact or NamespaceFact carries the full tier's trait itself");
    }

    /// <summary>
    /// Theory data is enumerated when the tests are discovered, before any filter: in the quick
    /// tier too, for the full tier's theories as well as its own.
    /// </summary>
    [Fact]
    public void Theory_data_needs_nothing()
    {
        var wrong = new List<string>();
        foreach (var test in All())
        {
            foreach (var data in test.Method.GetCustomAttributes<MemberDataAttribute>())
            {
                var type = data.MemberType ?? test.Class;
                var members = type.GetMember(data.MemberName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.FlattenHierarchy);
                members.ShouldNotBeEmpty($"{test}'s MemberData {data.MemberName}");
                var roots = members.SelectMany(m => m switch
                {
                    PropertyInfo p => new MethodBase?[] { p.GetMethod },
                    MethodInfo method => [method],
                    _ => [],
                }).OfType<MethodBase>().Append(type.TypeInitializer).OfType<MethodBase>();
                wrong.AddRange(Reached(roots).Select(n => $"{test}'s data {data.MemberName} needs {n.Key} ({n.Value})"));
            }
        }

        wrong.ShouldBeEmpty();
    }

    [Fact]
    public void Build_sh_runs_the_quick_tier_with_this_filter() =>
        File.ReadAllText(Path.Combine(Repo.Root, "build.sh")).ShouldContain($"--filter \"{Tier.QuickFilter}\"");

    /// <summary>The reading of needs sees through every shape of code a test may hide them in.</summary>
    [Theory]
    [InlineData(nameof(Samples.Directly), NativeBinary)]
    [InlineData(nameof(Samples.ThroughAHelper), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.InALambda), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.InALocalFunction), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.InAnIterator), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.InAnAsyncMethod), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.ThroughAStaticFieldsInitialiser), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.ThroughAGenericHelper), AnotherProgram, NativeBinary)]
    [InlineData(nameof(Samples.StartingAProgram), AnotherProgram)]
    [InlineData(nameof(Samples.StartingAProgramThroughItsStartInfo), AnotherProgram)]
    [InlineData(nameof(Samples.InProcessOnly))]
    public void The_needs_of_a_test_are_found_wherever_its_code_has_them(string method, params string[] needs)
    {
        // Plugin.Native is a program started: the native binary comes with another program.
        var found = Needs(new Test(typeof(Samples), typeof(Samples).GetMethod(method)!));
        found.Keys.Order(StringComparer.Ordinal).ShouldBe(needs, ignoreOrder: false, string.Join("; ", found.Select(n => $"{n.Key}: {n.Value}")));
    }

    [Fact]
    public void The_needs_of_a_class_s_constructor_and_of_its_fixtures_are_each_test_s()
    {
        Needs(new Test(typeof(NeedyConstructor), typeof(NeedyConstructor).GetMethod(nameof(NeedyConstructor.Nothing))!))
            .Keys.ShouldBe([AnotherProgram]);
        Needs(new Test(typeof(NeedyFixture), typeof(NeedyFixture).GetMethod(nameof(NeedyFixture.Nothing))!))
            .Keys.ShouldBe([AnotherProgram]);
    }

    private static Dictionary<string, List<string>> Traits(Test test)
    {
        var collection = new TestCollection(new TestAssembly(Reflector.Wrap(Tests)), null, "tiers");
        var method = new TestMethod(new TestClass(collection, Reflector.Wrap(test.Class)), Reflector.Wrap(test.Method));
        return new XunitTestCase(new NullMessageSink(), TestMethodDisplay.ClassAndMethod, TestMethodDisplayOptions.None, method).Traits;
    }

    private static bool InQuickTier(Test test) =>
        !(Traits(test).TryGetValue(Tier.Key, out var values) && values.Contains(Tier.Full));

    /// <summary>What a test needs beyond the test process, each with where it was found.</summary>
    private static Dictionary<string, string> Needs(Test test)
    {
        var needs = new Dictionary<string, string>();
        if (test.Method.IsDefined(typeof(RootFactAttribute)))
        {
            needs["root"] = "[RootFact]";
        }

        if (test.Method.IsDefined(typeof(NamespaceFactAttribute)))
        {
            needs["root and network namespaces"] = "[NamespaceFact]";
        }

        foreach (var (need, path) in Reached(Roots(test)))
        {
            needs.TryAdd(need, path);
        }

        return needs;
    }

    /// <summary>What runs for one test: the method, and its class's and fixtures' set-up and tear-down.</summary>
    private static IEnumerable<MethodBase> Roots(Test test)
    {
        yield return test.Method;
        var types = new List<Type>();
        for (var type = test.Class; type is not null && type.Assembly == Tests; type = type.BaseType)
        {
            types.Add(type);
        }

        var collections = test.Class.GetCustomAttributesData()
            .Where(a => a.AttributeType == typeof(CollectionAttribute))
            .Select(a => a.ConstructorArguments[0].Value as string)
            .ToHashSet();
        var definitions = Tests.GetTypes().Where(t => t.GetCustomAttributesData()
            .Any(a => a.AttributeType == typeof(CollectionDefinitionAttribute) && collections.Contains(a.ConstructorArguments[0].Value as string)));
        types.AddRange(test.Class.GetInterfaces().Concat(definitions.SelectMany(d => d.GetInterfaces()))
            .Where(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IClassFixture<>) || i.GetGenericTypeDefinition() == typeof(ICollectionFixture<>)))
            .Select(i => i.GetGenericArguments()[0]));
        foreach (var type in types)
        {
            foreach (var constructor in type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance))
            {
                yield return constructor;
            }

            if (type.TypeInitializer is { } initializer)
            {
                yield return initializer;
            }

            if (typeof(IDisposable).IsAssignableFrom(type))
            {
                foreach (var dispose in type.GetInterfaceMap(typeof(IDisposable)).TargetMethods)
                {
                    yield return dispose;
                }
            }
        }
    }

    /// <summary>
    /// The needs met on the way through this assembly's code from <paramref name="roots"/>, each
    /// with one path to it. Code outside this assembly (the plugin's, the runtime's) is not
    /// followed: it starts no program (the plugin runs in-process) and knows no native binary.
    /// </summary>
    private static Dictionary<string, string> Reached(IEnumerable<MethodBase> roots)
    {
        var found = new Dictionary<string, string>();
        var from = new Dictionary<MethodBase, MethodBase?>();
        var queue = new Queue<MethodBase>();
        foreach (var root in roots.Select(Definition))
        {
            if (from.TryAdd(root, null))
            {
                queue.Enqueue(root);
            }
        }

        while (queue.TryDequeue(out var method))
        {
            foreach (var next in Il.Reaches(method))
            {
                var need = SameMethod(next, NativeBinaryGetter) ? NativeBinary
                    : next.DeclaringType == typeof(Process) && next.Name == nameof(Process.Start) ? AnotherProgram
                    : null;
                if (need is not null)
                {
                    found.TryAdd(need, PathTo(method, from) + " -> " + Name(next));
                }
                else if (next.Module == Tests.ManifestModule && from.TryAdd(Definition(next), method))
                {
                    queue.Enqueue(Definition(next));
                }
            }
        }

        return found;
    }

    // One key per method of this assembly: the generic definition, whatever instantiation reached it.
    private static MethodBase Definition(MethodBase method) =>
        method.Module == Tests.ManifestModule ? method.Module.ResolveMethod(method.MetadataToken)! : method;

    private static bool SameMethod(MethodBase a, MethodBase b) => a.Module == b.Module && a.MetadataToken == b.MetadataToken;

    private static string PathTo(MethodBase method, Dictionary<MethodBase, MethodBase?> from)
    {
        var names = new List<string>();
        for (MethodBase? at = method; at is not null; at = from[at])
        {
            names.Add(Name(at));
        }

        names.Reverse();
        return string.Join(" -> ", names);
    }

    private static string Name(MethodBase method) => $"{method.DeclaringType?.Name}.{method.Name}";

    /// <summary>The methods one method's IL calls, constructs, takes as a delegate or runs through a static field's type.</summary>
    private static class Il
    {
        private static readonly Dictionary<short, OpCode> Codes = typeof(OpCodes)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!)
            .ToDictionary(o => o.Value);

        public static IEnumerable<MethodBase> Reaches(MethodBase method)
        {
            // An iterator or async method's body is its state machine's MoveNext.
            if (method.GetCustomAttribute<StateMachineAttribute>() is { } machine)
            {
                foreach (var step in machine.StateMachineType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                {
                    yield return step;
                }
            }

            var il = method.GetMethodBody()?.GetILAsByteArray();
            if (il is null)
            {
                yield break;
            }

            var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
            var methodArguments = method is MethodInfo { IsGenericMethod: true } ? method.GetGenericArguments() : null;
            for (var at = 0; at < il.Length;)
            {
                var code = il[at] == 0xFE ? Codes[unchecked((short)(0xFE00 | il[at + 1]))] : Codes[il[at]];
                at += code.Size;
                switch (code.OperandType)
                {
                    case OperandType.InlineMethod:
                        yield return method.Module.ResolveMethod(BitConverter.ToInt32(il, at), typeArguments, methodArguments)!;
                        break;
                    case OperandType.InlineField:
                        // A static field of this assembly runs its type's initialiser (a Lazy's lambda, say).
                        var field = method.Module.ResolveField(BitConverter.ToInt32(il, at), typeArguments, methodArguments)!;
                        if (field.IsStatic && field.Module == Tests.ManifestModule && field.DeclaringType?.TypeInitializer is { } initializer)
                        {
                            yield return initializer;
                        }

                        break;
                }

                at += code.OperandType switch
                {
                    OperandType.InlineNone => 0,
                    OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                    OperandType.InlineVar => 2,
                    OperandType.InlineI8 or OperandType.InlineR => 8,
                    OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
                    _ => 4,
                };
            }
        }
    }

    /// <summary>Never run: only read, by the tests of the reading of needs above.</summary>
    public sealed class Samples
    {
        public static string Directly() => Repo.NativeBinary;

        public static PluginRun ThroughAHelper() => Helper();

        public static PluginRun InALambda() => Call(() => Plugin.Native([]));

        public static PluginRun InALocalFunction()
        {
            return Local();

            static PluginRun Local() => Plugin.Native([]);
        }

        public static IEnumerable<int> InAnIterator()
        {
            yield return Plugin.Native([]).ExitCode;
        }

        public static async Task<int> InAnAsyncMethod()
        {
            await Task.Yield();
            return Plugin.Native([]).ExitCode;
        }

        public static PluginRun ThroughAStaticFieldsInitialiser() => Deferred.Run.Value;

        public static PluginRun ThroughAGenericHelper() => Generic(1);

        public static void StartingAProgram() => Command.MustSucceed("true");

        public static PluginRun StartingAProgramThroughItsStartInfo() => Plugin.Run(new ProcessStartInfo("true"), TimeSpan.FromSeconds(1));

        public static PluginRun InProcessOnly() => Plugin.InProcess("--help");

        private static PluginRun Helper() => Plugin.Native([]);

        private static PluginRun Call(Func<PluginRun> run) => run();

        private static PluginRun Generic<T>(T value) => value is null ? Plugin.InProcess() : Plugin.Native([]);
    }

    /// <summary>Never run: a static field whose initialiser makes a lambda that runs the native binary.</summary>
    public static class Deferred
    {
        public static readonly Lazy<PluginRun> Run = new(() => Plugin.Native([]));
    }

    /// <summary>Never run: a class whose constructor starts a program.</summary>
    public sealed class NeedyConstructor
    {
        public NeedyConstructor() => Command.MustSucceed("true");

        public static void Nothing()
        {
        }
    }

    /// <summary>Never run: a class whose fixture's constructor starts a program.</summary>
    public sealed class NeedyFixture : IClassFixture<NeedyConstructor>
    {
        public static void Nothing()
        {
        }
    }
}
