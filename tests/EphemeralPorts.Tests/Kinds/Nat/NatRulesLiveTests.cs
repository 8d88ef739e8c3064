using System.Diagnostics;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Native;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The reader against the kernel: the rules of tests/fixtures/natrules/install-rules.sh installed
/// in a throwaway namespace (ip netns, deleted after) with the real nft and iptables tools, read
/// back through <see cref="NatRulesReader"/> on a thread that entered it, and compared with the
/// hand-written expectations the captured dumps are also held to. As an unprivileged user the
/// reader is refused and says so.
/// </summary>
public class NatRulesLiveTests
{
    private static string Fixture(string name) => Path.Combine(Repo.Fixtures, "natrules", name);

    private static string[] Expected(string name) => File.ReadAllLines(Fixture(name)).Where(l => l.Length > 0).ToArray();

    [NamespaceFact]
    public void The_rules_installed_with_nft_iptables_nft_and_iptables_legacy_are_read_back_natively()
    {
        EnsureTools();
        using var ns = new ThrowawayNamespace("natrules");
        Command.MustSucceed("ip", "netns", "exec", ns.Name, "bash", Fixture("install-rules.sh"));

        var reading = ns.Run(NatRulesReader.Read);

        reading.Refusals.ShouldBeEmpty();
        reading.Rules.Select(r => r.Describe()).ShouldBe(
            [.. Expected("expected-nft.txt"), .. Expected("expected-legacy-ipv4.txt"), .. Expected("expected-legacy-ipv6.txt")]);
    }

    [NamespaceFact]
    public void Reading_a_namespace_without_legacy_tables_does_not_make_one()
    {
        EnsureTools();
        using var ns = new ThrowawayNamespace("natrules-nolegacy");
        Command.MustSucceed("ip", "netns", "exec", ns.Name, "bash", Fixture("install-rules.sh"), "nolegacy");

        var reading = ns.Run(NatRulesReader.Read);

        reading.Refusals.ShouldBeEmpty();
        reading.Rules.Select(r => r.Describe()).ShouldBe(Expected("expected-nft.txt"));
        // IPT_SO_GET_INFO for "nat" would have instantiated the legacy table (xt_find_table_lock()).
        Command.Output("ip", "netns", "exec", ns.Name, "cat", "/proc/net/ip_tables_names").ShouldNotContain("nat");
        Command.Output("ip", "netns", "exec", ns.Name, "cat", "/proc/net/ip6_tables_names").ShouldNotContain("nat");
    }

    [NamespaceFact]
    public void An_empty_namespace_has_no_rules_and_no_refusal()
    {
        using var ns = new ThrowawayNamespace("natrules-empty");

        var reading = ns.Run(NatRulesReader.Read);

        reading.Rules.ShouldBeEmpty();
        reading.Refusals.ShouldBeEmpty();
        reading.Complete.ShouldBeTrue();
    }

    [NamespaceFact]
    public void Interface_wildcards_negations_and_protocol_sets_are_read_as_the_tools_wrote_them()
    {
        EnsureTools();
        using var ns = new ThrowawayNamespace("natrules-match");
        foreach (var command in new[]
        {
            "nft add table ip m",
            "nft add chain ip m post { type nat hook postrouting priority srcnat ; }",
            "nft add rule ip m post oifname \"eth*\" masquerade",
            "nft add rule ip m post oifname != \"lo\" masquerade",
            "nft add rule ip m post meta l4proto { tcp, udp } masquerade to :1000-1099",
            "iptables-legacy -t nat -A POSTROUTING -o eth+ -j MASQUERADE",
            "iptables-legacy -t nat -A POSTROUTING ! -o lo ! -p tcp -j MASQUERADE",
        })
        {
            Command.MustSucceed(["ip", "netns", "exec", ns.Name, .. command.Split(' ')]);
        }

        var reading = ns.Run(NatRulesReader.Read);

        reading.Rules.Select(r => r.Describe()).ShouldBe(
        [
            "ipv4 masquerade ports default proto any oif eth* flags - (nft table ip m chain post)",
            "ipv4 masquerade ports default proto any oif !lo flags - (nft table ip m chain post)",
            // A set of protocols is not read: the rule may apply to any.
            "ipv4 masquerade ports 1000-1099 proto any oif any flags - (nft table ip m chain post)",
            "ipv4 masquerade ports default proto any oif eth* flags - (iptables-legacy nat POSTROUTING)",
            // "! -p tcp": any protocol but TCP, read as any (may apply).
            "ipv4 masquerade ports default proto any oif !lo flags - (iptables-legacy nat POSTROUTING)",
        ]);
    }

    [RootFact]
    public void An_unprivileged_user_is_refused_and_told_that_CAP_NET_ADMIN_is_needed()
    {
        using var user = new ThrowawayUser("natrules");
        NatRulesReading? reading = null;
        Exception? failure = null;
        // Only this thread drops root (the raw setresuid changes the calling thread alone, and
        // with every uid non-zero the kernel clears its capabilities); the thread ends after.
        var thread = new Thread(() =>
        {
            try
            {
                var setresuid = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? 147 : 117;
                Libc.syscall(setresuid, user.Uid, user.Uid, user.Uid, 0).ShouldBe(0);
                reading = NatRulesReader.Read();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();

        failure.ShouldBeNull();
        reading!.Rules.ShouldBeEmpty();
        reading.Complete.ShouldBeFalse();
        var nft = reading.Refusals.Where(r => r.Source == "nf_tables rule dump").ShouldHaveSingleItem();
        nft.Errno.ShouldBe(Errno.Eperm); // nfnetlink_rcv(): netlink_net_capable(skb, CAP_NET_ADMIN)
        reading.Refusals.ShouldAllBe(r => r.NeedsNetAdmin);
        nft.Message.ShouldStartWith("the NAT rules could not be read (needs CAP_NET_ADMIN)");
    }

    /// <summary>nft and the iptables tools (both back ends), from Debian's packages where missing.</summary>
    private static void EnsureTools()
    {
        if (File.Exists("/usr/sbin/nft") && File.Exists("/usr/sbin/iptables-legacy") && File.Exists("/usr/sbin/iptables-nft"))
        {
            return;
        }

        foreach (var args in new[] { "update -qq", "install -y -qq --no-install-recommends nftables iptables" })
        {
            var start = new ProcessStartInfo("apt-get", args) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            var run = Support.Plugin.Run(start, TimeSpan.FromMinutes(5));
            run.ExitCode.ShouldBe(0, $"apt-get {args}: {run.Stderr}");
        }
    }

    /// <summary>A named namespace (ip netns add), deleted on dispose, and work run on a thread that entered it.</summary>
    private sealed class ThrowawayNamespace : IDisposable
    {
        public ThrowawayNamespace(string tag)
        {
            Name = $"cep-{tag}-{Environment.ProcessId % 100000}";
            Command.MustSucceed("ip", "netns", "add", Name);
            Command.MustSucceed("ip", "netns", "exec", Name, "ip", "link", "set", "lo", "up");
        }

        public string Name { get; }

        public T Run<T>(Func<T> work)
        {
            T result = default!;
            Exception? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    using var inside = NamespaceSwitch.Enter($"/run/netns/{Name}", out var errno)
                        ?? throw new InvalidOperationException($"setns into {Name}: {Errno.Describe(errno)}");
                    result = work();
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            thread.Start();
            thread.Join();
            return failure is null ? result : throw new InvalidOperationException($"in namespace {Name}: {failure.Message}", failure);
        }

        public void Dispose() => Command.MustSucceed("ip", "netns", "delete", Name);
    }
}
