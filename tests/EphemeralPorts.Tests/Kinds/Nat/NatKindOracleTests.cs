using System.Text.Json;
using EphemeralPorts.Plugin;
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

    /// <summary>
    /// The router reached from elsewhere, as an operator does on a Docker host or Kubernetes node:
    /// by name (--netns) and by a process in it (--pid) from the server's namespace, and among every
    /// namespace (--all-namespaces, in a private PID namespace where the named namespaces are what
    /// there is to find). Each says what the kernel did, and with --all-namespaces the router's
    /// full NAT tuple is the headline and its namespace line says 100%.
    /// </summary>
    [NatNamespaceFact]
    public void The_router_is_checked_by_netns_pid_and_all_namespaces()
    {
        var b = Repo.NativeBinary;
        var probe = string.Join("; echo ====; ",
            $"ip netns exec $EPNAT_SERVER {b} --netns $EPNAT_ROUTER --protocol tcp",
            $"sleep 60 & p=$!; ip netns exec $EPNAT_SERVER {b} --pid $p --protocol tcp --format json; kill $p",
            $"ip netns exec $EPNAT_SERVER unshare -pf --mount-proc {b} --all-namespaces --protocol tcp -v",
            $"ip netns exec $EPNAT_SERVER unshare -pf --mount-proc {b} --all-namespaces --protocol tcp --format prometheus");
        var doc = NatOracleTests.Nat("fill", "--range", "10", "--probe", probe);
        doc.GetProperty("first_failure").GetInt32().ShouldBe(11);
        var router = doc.GetProperty("namespaces").GetProperty("router").GetString()!;
        foreach (var attempt in doc.GetProperty("attempts").EnumerateArray())
        {
            var n = attempt.GetProperty("n").GetInt32();
            var held = Math.Min(n, 10);
            var expected = held * 10 > 85 ? "CRITICAL" : held * 10 > 70 ? "WARNING" : "OK";
            var parts = attempt.GetProperty("probe").GetProperty("stdout").GetString()!.Split("====\n");
            parts.Length.ShouldBe(4, $"after flow {n}");

            var netns = parts[0];
            netns.ShouldStartWith($"EPHEMERAL PORTS {expected} - namespace netns {router}: ", Case.Sensitive, $"--netns after flow {n}");
            netns.Split('\n')[0].ShouldContain($"busiest NAT tuple {Key}/tcp holds {held} of 10 source ports", Case.Sensitive, netns);
            netns.ShouldContain($"\n  {Key}/tcp {held}/10 ", Case.Sensitive, $"the busiest tuple's detail line, within 1 KB: {netns}");

            using (var json = JsonDocument.Parse(parts[1]))
            {
                json.RootElement.GetProperty("state").GetString().ShouldBe(expected, $"--pid after flow {n}");
                json.RootElement.GetProperty("nat").GetProperty("tuples")[0].GetProperty("held").GetInt32().ShouldBe(held);
            }

            var all = parts[2];
            all.ShouldContain($"'nat_busiest_used'={held};;;0;10", Case.Sensitive, $"--all-namespaces after flow {n}: {all}");
            var percent = Numbers.Format(held * 10);
            all.ShouldContain($"\n  netns {router}: {expected} {percent}%\n", Case.Sensitive, $"the router's line after flow {n}: {all}");
            if (held == 10)
            {
                all.ShouldStartWith($"EPHEMERAL PORTS CRITICAL - namespace netns {router}: busiest NAT tuple {Key}/tcp holds 10 of 10 source ports (100%), new connections to it fail now", Case.Sensitive, all);
            }

            parts[3].ShouldContain($"ephemeral_ports_namespace_nat_busiest_ratio{{namespace=\"netns {router}\",", Case.Sensitive, parts[3]);
        }
    }

    /// <summary>
    /// Without CAP_NET_ADMIN the keys cannot be read. The router forwards (net.ipv4.ip_forward = 1)
    /// and tracks the flows, so an OK would be an OK for what was never read: UNKNOWN, naming why,
    /// with the table's figures still there; --ignore-nat (a router known not to NAT) takes the
    /// keys out of the verdict and says so at -v.
    /// </summary>
    [NatNamespaceFact]
    public void Without_cap_net_admin_a_forwarding_router_is_unknown_not_ok()
    {
        var nobody = $"setpriv --reuid=nobody --init-groups -- {Support.Plugin.SharedBinary} --protocol tcp";
        var probe = $"{nobody}; echo \"exit=$?\"; echo ====; {nobody} --ignore-nat -v; echo \"exit=$?\"";
        var doc = NatOracleTests.Nat("fill", "--range", "10", "--probe", probe);
        foreach (var attempt in doc.GetProperty("attempts").EnumerateArray())
        {
            var n = attempt.GetProperty("n").GetInt32();
            var parts = attempt.GetProperty("probe").GetProperty("stdout").GetString()!.Split("====\n");
            parts.Length.ShouldBe(2, $"after flow {n}");
            var (unread, ignored) = (parts[0], parts[1]);
            unread.ShouldStartWith("EPHEMERAL PORTS UNKNOWN - NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN, and this namespace forwards packets (net.ipv4.ip_forward = 1) and tracks ", Case.Sensitive, $"after flow {n}");
            unread.ShouldContain("\nexit=3\n", Case.Sensitive, unread);
            unread.ShouldNotContain("nat_busiest", Case.Sensitive, "nothing of the keys was read");
            Counter(unread, "conntrack_entries").ShouldBeGreaterThanOrEqualTo(Math.Min(n, 10), "the table is still read");

            ignored.ShouldStartWith("EPHEMERAL PORTS OK - ", Case.Sensitive, $"--ignore-nat after flow {n}: {ignored}");
            ignored.ShouldContain("\nNAT tuples not read (--ignore-nat)\n", Case.Sensitive, ignored);
            ignored.ShouldContain("\nexit=0\n", Case.Sensitive, ignored);
            Counter(ignored, "conntrack_entries").ShouldBeGreaterThanOrEqualTo(Math.Min(n, 10));
        }
    }

    internal static long Counter(string statusLine, string label)
    {
        var at = statusLine.IndexOf($"'{label}'=", StringComparison.Ordinal);
        at.ShouldBeGreaterThan(0, $"{label} in {statusLine}");
        var value = statusLine[(at + label.Length + 3)..].TakeWhile(char.IsAsciiDigit).ToArray();
        return long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
