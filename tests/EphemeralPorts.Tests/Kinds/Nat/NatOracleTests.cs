using System.Diagnostics;
using System.Text.Json;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Tests.Oracle;
using EphemeralPorts.Tests.Support;
using Xunit.Abstractions;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The kernel is the oracle for <see cref="NatPortSearch"/>: tests/oracle/nat.py builds client,
/// router and server namespaces with a source-NAT rule in the router, makes the kernel's nf_nat
/// search for ports of one key, and reports what the router dropped together with the ports the
/// key held, read back from the conntrack table. The model is fed that held set. In the collection
/// of the tests that count every namespace of the host: the three made here would be counted.
/// </summary>
[Collection(NamespaceCollection.Name)]
[Trait(Tier.Key, Tier.Full)]
public class NatOracleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    internal static JsonElement Nat(params string[] args)
    {
        var script = Path.Combine(Repo.Root, "tests", "oracle", "nat.py");
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Limit))
        {
            // Killed, its finally does not run: take its namespaces away here.
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Command.MustSucceed("python3", script, "cleanup");
            throw new TimeoutException($"nat.py {string.Join(' ', args)} did not end within {Limit}");
        }

        process.ExitCode.ShouldBe(0, $"nat.py {string.Join(' ', args)}: {stderr.Result}");
        using var doc = JsonDocument.Parse(stdout.Result);
        var root = doc.RootElement.Clone();
        root.GetProperty("left_behind").GetArrayLength().ShouldBe(0, "nat.py left namespaces behind");
        return root;
    }

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    private static NatPortSearch Model(JsonElement doc)
    {
        var range = Ints(doc.GetProperty("range"));
        var search = new NatPortSearch(new NatPortRange(range[0], range[1]));
        var soft = doc.TryGetProperty("soft", out var s) ? Ints(s).ToHashSet() : [];
        foreach (var port in Ints(doc.GetProperty("held")))
        {
            search.Hold(port, soft.Contains(port)).ShouldBeTrue($"held port {port} outside the rule's range {search.Range}");
        }

        return search;
    }

    [NatNamespaceFact]
    public void A_ten_port_range_fails_at_the_eleventh_flow_under_every_kind_of_rule_tcp_and_udp()
    {
        foreach (var (kind, proto) in new[] { ("snat", "tcp"), ("masquerade", "tcp"), ("iptables-snat", "tcp"), ("iptables-masquerade", "tcp"), ("snat", "udp"), ("iptables-masquerade", "udp") })
        {
            var doc = Nat("fill", "--range", "10", "--rule", kind, "--proto", proto);
            var rule = $"{kind}/{proto}";
            var attempts = doc.GetProperty("attempts").EnumerateArray().ToList();
            doc.GetProperty("first_failure").GetInt32().ShouldBe(11, rule);
            attempts[^1].GetProperty("how").GetString().ShouldBeOneOf(["insert_failed", "timeout"]);

            // Each flow before it got a port of its own in the range, and the table holds them all.
            var natPorts = attempts.Take(10).Select(a => a.GetProperty("nat_port").GetInt32()).ToList();
            natPorts.Distinct().Count().ShouldBe(10, rule);
            natPorts.ShouldAllBe(p => p >= 40000 && p <= 40009, rule);
            var model = Model(doc);
            model.AllHeld.ShouldBeTrue(rule);
            model.FailureProbability().ShouldBe(1.0, rule);

            // With one port fewer held the model expects the flow to get through (at most 9 of the
            // 65,536 offsets, those whose window crosses the u16 wrap, would miss the last port).
            var nine = new NatPortSearch(new NatPortRange(40000, 40009));
            foreach (var p in natPorts.Take(9))
            {
                nine.Hold(p);
            }

            nine.FailureProbability().ShouldBeLessThanOrEqualTo(9 / 65536.0, rule);
        }
    }

    /// <summary>
    /// 128 ports, the largest single window: 65,536 is a multiple of 128, so every window covers the
    /// whole range and the flows fail exactly at 129, as the model says.
    /// </summary>
    [NatNamespaceFact]
    public void A_128_port_range_fails_exactly_when_every_port_is_held()
    {
        var doc = Nat("fill", "--range", "128");
        doc.GetProperty("first_failure").GetInt32().ShouldBe(129);
        var model = Model(doc);
        model.AllHeld.ShouldBeTrue();
        model.FailureProbability().ShouldBe(1.0);

        var attempts = doc.GetProperty("attempts").EnumerateArray().Take(128).Select(a => a.GetProperty("nat_port").GetInt32()).ToList();
        var before = new NatPortSearch(new NatPortRange(40000, 40127));
        foreach (var port in attempts.Take(127))
        {
            before.Hold(port);
        }

        before.FailureProbability().ShouldBe(0, "with one port free a 128-candidate window always finds it");
    }

    /// <summary>
    /// A rule without ports: a flow keeps its own port when free; eight more from the same port
    /// number (other client addresses) each search the class default range of that port.
    /// </summary>
    [NatNamespaceFact]
    public void Without_ports_in_the_rule_a_clash_searches_the_class_default_of_the_original_port()
    {
        foreach (var rule in new[] { "snat", "masquerade", "iptables-snat", "iptables-masquerade" })
        {
            var doc = Nat("classes", "--rule", rule);
            foreach (var pair in doc.GetProperty("pairs").EnumerateArray())
            {
                var original = pair.GetProperty("original").GetInt32();
                var ports = Ints(pair.GetProperty("nat_ports"));
                ports.Length.ShouldBe(9, $"{rule} {original}");
                ports[0].ShouldBe(original, $"{rule}: a free original port is kept");
                var range = NatPortRange.ClassDefault(original);
                foreach (var port in ports.Skip(1))
                {
                    range.Contains(port).ShouldBeTrue($"{rule}: a clash on {original} got {port}, outside {range}");
                    port.ShouldNotBe(original, rule);
                }

                ports.Distinct().Count().ShouldBe(9, $"{rule} {original}");
            }
        }
    }

    [NatNamespaceFact]
    public void Connections_of_the_router_itself_hold_ports_of_the_same_key()
    {
        var doc = Nat("local", "--range", "10", "--local", "5");
        doc.GetProperty("connected").GetInt32().ShouldBe(5);
        doc.GetProperty("first_failure").GetInt32().ShouldBe(6);
        var model = Model(doc);
        model.AllHeld.ShouldBeTrue("the router's 5 and the client's 5 fill the key");
        foreach (var port in Ints(doc.GetProperty("local_ports")))
        {
            model.IsHeld(port).ShouldBeTrue($"the router's own port {port}");
        }
    }

    /// <summary>
    /// 950 of 1000 ports held in three layouts (one also for UDP); 2000 new flows each. Each flow is a Bernoulli trial
    /// with the model's probability p (the kernel draws its offsets afresh, and nat.py undoes every
    /// flow before the next, checked by <c>changed</c> being empty), so the observed share has a
    /// standard deviation of sqrt(p(1 - p) / 2000): at most 1.1 points. The tolerance is 4.5 of those
    /// plus one flow (a false alarm once in ~150,000 runs), 3.4 points at p = 0.128 and 5 at p = 0.59;
    /// a model that counted ports instead of their layout would say 0 for the first two, and a
    /// different window arithmetic moves these figures by more than that.
    /// </summary>
    [NatNamespaceFact]
    public void The_observed_failure_rate_is_the_models_for_the_same_held_ports()
    {
        const int Attempts = 2000;
        foreach (var (shape, proto) in new[] { ("blocks", "tcp"), ("contiguous", "tcp"), ("random", "tcp"), ("blocks", "udp") })
        {
            var doc = Nat("rate", "--range", "1000", "--used", "950", "--layout", shape, "--proto", proto, "--attempts", Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var layout = $"{shape}/{proto}";
            doc.GetProperty("changed").GetArrayLength().ShouldBe(0, $"{layout}: the held set drifted during the run");
            doc.GetProperty("late").GetInt32().ShouldBe(0, $"{layout}: a flow counted failed got through later");
            var model = Model(doc);
            model.Held.ShouldBe(950, layout);

            var predicted = model.FailureProbability();
            var observed = doc.GetProperty("failed").GetInt32() / (double)Attempts;
            var tolerance = (4.5 * Math.Sqrt(predicted * (1 - predicted) / Attempts)) + (1.0 / Attempts);
            output.WriteLine($"{layout}: predicted {predicted:P2}, observed {observed:P2} (tolerance {tolerance:P2}, {doc.GetProperty("seconds").GetDouble()} s)");
            observed.ShouldBe(predicted, tolerance, layout);
        }
    }

    /// <summary>
    /// Some of the 950 held ports are closing SNAT entries (TIME_WAIT, made by conntrack -I, so their
    /// original-direction td_end is 0). From 6.5 a new SYN may evict one among the last 32 candidates
    /// of a window when its own end sequence is "after" 0 as a signed 32-bit difference: for a random
    /// ISN that is one flow in two, the same answer for every soft entry. So half the flows meet the
    /// odds of <see cref="SoftPorts.Evictable"/> and half those of <see cref="SoftPorts.Used"/>;
    /// before 6.5 all meet Used. 3000 flows, the tolerance of the test above (at most 3.9 points).
    /// 100 soft ports at random among the blocks: Used 12.8%, Evictable and Free ~0, so the mix is
    /// 6.4% against 12.8% for a kernel that never evicts. 12 soft ports evenly spaced in one run of
    /// 950: Used 59.4%, Evictable 8.6%, Free 0, so the mix is 34.0% against 29.7% had the kernel
    /// evicted anywhere in the window rather than only in its last 32 candidates.
    /// </summary>
    [NatNamespaceTheory]
    [InlineData("blocks", 100, "random")]
    [InlineData("contiguous", 12, "spaced")]
    public void Closing_snat_entries_give_their_ports_up_only_where_the_kernel_may_evict(string layout, int soft, string softLayout)
    {
        const int Attempts = 3000;
        var doc = Nat("rate", "--range", "1000", "--used", "950", "--layout", layout, "--soft", soft.ToString(System.Globalization.CultureInfo.InvariantCulture), "--soft-layout", softLayout, "--attempts", Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        doc.GetProperty("changed").GetArrayLength().ShouldBe(0, "the held set drifted during the run");
        doc.GetProperty("late").GetInt32().ShouldBe(0);
        var model = Model(doc);
        (model.Held, model.Soft).ShouldBe((950, soft));

        var odds = model.Odds();
        var release = doc.GetProperty("kernel").GetString()!.Split('.', '-');
        var evicts = (int.Parse(release[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(release[1], System.Globalization.CultureInfo.InvariantCulture)).CompareTo((6, 5)) >= 0;
        var predicted = evicts ? (odds.SoftUsed + odds.SoftEvictable) / 2 : odds.SoftUsed;
        var observed = doc.GetProperty("failed").GetInt32() / (double)Attempts;
        var tolerance = (4.5 * Math.Sqrt(predicted * (1 - predicted) / Attempts)) + (1.0 / Attempts);
        output.WriteLine($"{softLayout}: kernel {doc.GetProperty("kernel").GetString()}: soft as used {odds.SoftUsed:P2}, evictable {odds.SoftEvictable:P2}, as free {odds.SoftFree:P2}; predicted {predicted:P2}, observed {observed:P2} (tolerance {tolerance:P2}), {doc.GetProperty("evicted").GetInt32()} evictions");
        observed.ShouldBe(predicted, tolerance);
        if (evicts)
        {
            doc.GetProperty("evicted").GetInt32().ShouldBeGreaterThan(0);
        }
    }
}

/// <summary>A NAT oracle test: root, network namespaces, and nft, iptables and conntrack installed.</summary>
public sealed class NatNamespaceFactAttribute : FactAttribute
{
    public NatNamespaceFactAttribute()
    {
        if (NatOracle.WhyNot() is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>The same, for a theory.</summary>
public sealed class NatNamespaceTheoryAttribute : TheoryAttribute
{
    public NatNamespaceTheoryAttribute()
    {
        if (NatOracle.WhyNot() is { } reason)
        {
            Skip = reason;
        }
    }
}

internal static class NatOracle
{
    public static string? WhyNot() => Environments.WhyNotRoot() ?? Environments.WhyNoNamespaces() ?? WhyNoTools();

    private static string? WhyNoTools()
    {
        var missing = new[] { "nft", "iptables", "conntrack", "python3" }
            .Where(tool => !Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(dir => File.Exists(Path.Combine(dir, tool))))
            .ToList();
        return missing.Count == 0 ? null : $"needs {string.Join(", ", missing)} (apt-get install nftables iptables conntrack python3)";
    }
}
