using System.Text.Json;
using EphemeralPorts.Tests.Oracle;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The NAT kind against the kernel, through the published binary: tests/oracle/nat.py fills one
/// source-NAT key of a 10-port rule flow by flow and runs the plugin in the router's namespace
/// after each one (--probe). The plugin must name the key, count exactly the flows the kernel
/// gave ports, warn before the range is full, and say CRITICAL with "fail now" exactly when the
/// kernel drops the next SYN (or datagram), whatever rule made the NAT.
/// </summary>
[Collection(NamespaceCollection.Name)]
[Trait(Tier.Key, Tier.Full)]
public class NatKindOracleTests
{
    private const string Key = "10.211.2.1 -> 10.211.2.2:8080";

    /// <summary>Each rule, with its range read from the rules in force and given on the command line.</summary>
    public static TheoryData<string, string, bool> Rules => new()
    {
        { "snat", "tcp", false },
        { "masquerade", "tcp", false },
        { "iptables-masquerade", "tcp", false },
        { "iptables-snat", "udp", false },
        { "snat", "udp", false },
        { "snat", "tcp", true },
    };

    [NatNamespaceTheory]
    [MemberData(nameof(Rules))]
    public void The_plugin_in_the_router_says_fail_now_exactly_when_the_kernel_drops(string rule, string proto, bool given)
    {
        var probe = $"{Repo.NativeBinary} {(given ? "--nat-range 40000-40009 " : string.Empty)}--protocol tcp -w 70 -c 85 -v";
        var doc = NatOracleTests.Nat("fill", "--range", "10", "--rule", rule, "--proto", proto, "--probe", probe);
        var attempts = doc.GetProperty("attempts").EnumerateArray().ToList();
        doc.GetProperty("first_failure").GetInt32().ShouldBe(11, "the kernel's first refusal");
        var range = given ? "given by the operator" : "40000-40009";
        foreach (var attempt in attempts)
        {
            var n = attempt.GetProperty("n").GetInt32();
            var held = Math.Min(n, 10);
            var run = attempt.GetProperty("probe");
            var stdout = run.GetProperty("stdout").GetString()!;
            var statusLine = stdout.Split('\n')[0];
            var expected = held * 10 > 85 ? 2 : held * 10 > 70 ? 1 : 0;
            run.GetProperty("exit").GetInt32().ShouldBe(expected, $"{rule}/{proto} after flow {n}: {statusLine}");
            statusLine.ShouldContain($"busiest NAT tuple {Key}/{proto} holds {held} of 10 source ports", Case.Sensitive, $"after flow {n}");
            statusLine.Contains("new connections to it fail now", StringComparison.Ordinal).ShouldBe(held == 10, $"'fail now' after flow {n}: {statusLine}");
            statusLine.ShouldContain($"'nat_busiest_used'={held};;;0;10");
            stdout.ShouldContain($"NAT range of the busiest tuple: 40000-40009 (", Case.Sensitive, "the range in force");
            stdout.ShouldContain(range, Case.Sensitive, $"where the range came from: {stdout}");
            if (!attempt.GetProperty("ok").GetBoolean())
            {
                // The dropped flow is counted where the damage shows.
                Counter(statusLine, "conntrack_insert_failed").ShouldBeGreaterThan(0, statusLine);
            }
        }
    }

    [NatNamespaceFact]
    public void Json_and_prometheus_carry_the_key_and_its_odds()
    {
        var probe = $"{Repo.NativeBinary} --nat-range 40000-40009 --format json";
        var doc = NatOracleTests.Nat("fill", "--range", "10", "--probe", probe);
        var last = doc.GetProperty("attempts").EnumerateArray().Last().GetProperty("probe").GetProperty("stdout").GetString()!;
        using var json = JsonDocument.Parse(last);
        var nat = json.RootElement.GetProperty("nat");
        nat.GetProperty("busiestPct").GetDouble().ShouldBe(100);
        nat.GetProperty("failurePct").GetDouble().ShouldBe(100);
        var tuple = nat.GetProperty("tuples")[0];
        tuple.GetProperty("natAddress").GetString().ShouldBe("10.211.2.1");
        tuple.GetProperty("destination").GetString().ShouldBe("10.211.2.2");
        tuple.GetProperty("port").GetInt32().ShouldBe(8080);
        tuple.GetProperty("held").GetInt32().ShouldBe(10);
        json.RootElement.GetProperty("state").GetString().ShouldBe("CRITICAL");
        json.RootElement.GetProperty("runbook").GetString()!.ShouldEndWith("#nat-tuple-critical");

        var prometheus = NatOracleTests.Nat("fill", "--range", "10", "--probe", $"{Repo.NativeBinary} --nat-range 40000-40009 --format prometheus");
        var text = prometheus.GetProperty("attempts").EnumerateArray().Last().GetProperty("probe").GetProperty("stdout").GetString()!;
        text.ShouldContain("ephemeral_ports_nat_busiest_ratio 1\n");
        text.ShouldContain("ephemeral_ports_nat_failure_ratio 1\n");
        text.ShouldContain("# TYPE ephemeral_ports_conntrack_insert_failed_total counter\n");
        text.ShouldContain("ephemeral_ports_nat_busiest_info{nat_address=\"10.211.2.1\",destination=\"10.211.2.2\",port=\"8080\",protocol=\"tcp\"} 1\n");
    }

    internal static long Counter(string statusLine, string label)
    {
        var at = statusLine.IndexOf($"'{label}'=", StringComparison.Ordinal);
        at.ShouldBeGreaterThan(0, $"{label} in {statusLine}");
        var value = statusLine[(at + label.Length + 3)..].TakeWhile(char.IsAsciiDigit).ToArray();
        return long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
