using System.Text.Json;
using EphemeralPorts.Tests.Oracle;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// A source-NAT rule to an address range, against the kernel, through the published binary:
/// tests/oracle/nat.py addrrange has eight client addresses open flows to one server under
/// <c>snat to 10.211.2.3-10.211.2.4:40000-40009</c> (or iptables-nft's <c>-j SNAT --to-source</c>
/// with that range), behind a rule to another address with 5 ports that never applies, and reads
/// back from the router's conntrack table which address the kernel gave each flow. nf_nat hashes
/// each (client, server) to one address of the range (find_best_ips_proto) and then searches only
/// that address's ports, so each address is a key of its own: one fills and the kernel drops a
/// client's SYN while the other address still has free ports. The plugin, run in the router after
/// each flow (--probe), must count each key exactly as the table does, alert on the busiest at the
/// thresholds of a 10-port range, and name the full address with "fail now" when the kernel drops,
/// the other with its own count. Every expectation comes from what the kernel did, none from a
/// prediction of its hash.
/// </summary>
[Collection(NamespaceCollection.Name)]
[Trait(Tier.Key, Tier.Full)]
public class NatAddressRangeOracleTests
{
    private const string Server = "10.211.2.2:8080";
    private static readonly string[] Pair = ["10.211.2.3", "10.211.2.4"];

    /// <summary>Each rule with the chain its rule lands in (iptables-nft: the nft table nat it makes).</summary>
    public static TheoryData<string, string, string> Rules => new()
    {
        { "snat", "tcp", "nft table ip epnat chain post" },
        { "iptables-snat", "tcp", "nft table ip nat chain POSTROUTING" },
        { "snat", "udp", "nft table ip epnat chain post" },
        { "iptables-snat", "udp", "nft table ip nat chain POSTROUTING" },
    };

    [NatNamespaceTheory]
    [MemberData(nameof(Rules))]
    public void Each_address_of_the_range_is_a_key_of_its_own_and_the_plugin_names_the_one_that_fails(string rule, string proto, string origin)
    {
        var probe = $"{Repo.NativeBinary} --protocol tcp -w 70 -c 85 -v";
        var doc = NatOracleTests.Nat("addrrange", "--range", "10", "--rule", rule, "--proto", proto, "--probe", probe);
        var attempts = doc.GetProperty("attempts").EnumerateArray().ToList();
        var label = $"{rule}/{proto}";

        // What the kernel did: each client's flows all on one address of the range (the server saw
        // that address too), and the clients spread over both.
        var addressOf = new Dictionary<string, string>();
        foreach (var attempt in attempts.Where(a => a.GetProperty("ok").GetBoolean()))
        {
            var client = attempt.GetProperty("client").GetString()!;
            var nat = attempt.GetProperty("nat_address").GetString()!;
            Pair.ShouldContain(nat, $"{label}: flow {attempt.GetProperty("n")} from {client}");
            attempt.GetProperty("server_saw").GetString()!.ShouldStartWith(nat + ":", customMessage: "the conntrack reply tuple and the server agree");
            if (!addressOf.TryAdd(client, nat))
            {
                addressOf[client].ShouldBe(nat, $"{label}: one (client, server) pair, one NAT address (flow {attempt.GetProperty("n")})");
            }
        }

        addressOf.Values.Distinct().Count().ShouldBe(2, $"{label}: the kernel put the clients on both addresses: {string.Join(", ", addressOf)}");

        // The kernel's first refusal: a client of the full address, while the other had ports free.
        var drop = attempts.Single(a => !a.GetProperty("ok").GetBoolean());
        drop.GetProperty("n").GetInt32().ShouldBe(doc.GetProperty("first_failure").GetInt32());
        drop.GetProperty("nat_address").ValueKind.ShouldBe(JsonValueKind.Null, "a dropped flow leaves no conntrack entry");
        var full = addressOf[drop.GetProperty("client").GetString()!];
        var other = Pair.Single(p => p != full);
        var atDrop = Held(drop);
        atDrop[full].ShouldBe(10, $"{label}: the dropped client's address holds the whole range");
        atDrop.GetValueOrDefault(other).ShouldBeInRange(1, 9, $"{label}: the other address had free ports");
        var after = attempts[^1];
        after.GetProperty("phase").GetString().ShouldBe("other");
        after.GetProperty("ok").GetBoolean().ShouldBeTrue($"{label}: a client of {other} still gets a port after the drop");
        after.GetProperty("nat_address").GetString().ShouldBe(other);

        // The plugin after each flow: each key as the table counts it, the busiest against -w/-c.
        var busiestSeen = new HashSet<int>();
        foreach (var attempt in attempts)
        {
            var n = attempt.GetProperty("n").GetInt32();
            var held = Held(attempt);
            held.Keys.ShouldBeSubsetOf(Pair, $"after flow {n}");
            var busiest = held.Values.Max();
            busiestSeen.Add(busiest);
            var run = attempt.GetProperty("probe");
            var stdout = run.GetProperty("stdout").GetString()!;
            var statusLine = stdout.Split('\n')[0];
            var at = $"{label} after flow {n} ({string.Join(", ", held)}): {statusLine}";
            run.GetProperty("exit").GetInt32().ShouldBe(busiest * 10 > 85 ? 2 : busiest * 10 > 70 ? 1 : 0, at);

            // The busiest key named (on a tie, either of the tied addresses).
            held.Where(k => k.Value == busiest)
                .Any(k => statusLine.Contains($"busiest NAT tuple {k.Key} -> {Server}/{proto} holds {busiest} of 10 source ports", StringComparison.Ordinal))
                .ShouldBeTrue(at);
            statusLine.Contains("new connections to it fail now", StringComparison.Ordinal).ShouldBe(busiest == 10, at);
            statusLine.ShouldContain($"'nat_busiest_used'={busiest};;;0;10", Case.Sensitive, at);
            statusLine.ShouldContain($"'nat_tuples'={held.Count};;;0", Case.Sensitive, at);
            foreach (var (address, count) in held)
            {
                // Each address's key with its own count, against the rule's 10 ports (not the other
                // rule's 5, not the 64,512 of no rule).
                var line = $"  {address} -> {Server}/{proto} {count}/10 ({count * 10}%){(count == 10 ? ", 100% of new flows fail" : string.Empty)}\n";
                stdout.ShouldContain(line, Case.Sensitive, at);
            }

            stdout.ShouldContain($"NAT range of the busiest tuple: 40000-40009 (ports 40000-40009 of {origin}, the one rule that may apply)", Case.Sensitive, at);
            stdout.ShouldContain("nf_tables: 2 source-NAT rules\n", Case.Sensitive, at);
            if (n == drop.GetProperty("n").GetInt32())
            {
                // Where the kernel drops: the full address named, failing now, the other below it.
                statusLine.ShouldContain($"busiest NAT tuple {full} -> {Server}/{proto} holds 10 of 10 source ports (100%), new connections to it fail now", Case.Sensitive, at);
                NatKindOracleTests.Counter(statusLine, "conntrack_insert_failed").ShouldBeGreaterThan(0, at);
            }
        }

        // The fill passed every threshold of the busiest key: OK, WARNING at 8, CRITICAL at 9, fail now at 10.
        new[] { 7, 8, 9, 10 }.ShouldBeSubsetOf(busiestSeen, label);
    }

    private static Dictionary<string, int> Held(JsonElement attempt) =>
        attempt.GetProperty("held").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
}
