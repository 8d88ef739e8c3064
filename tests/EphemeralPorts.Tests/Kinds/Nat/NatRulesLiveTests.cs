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
// Its namespaces hold conntrack entries and rules: serialized with the other tests that count
// every namespace of the host (ConntrackTableOracleTests' --all-namespaces sum).
[Collection(Oracle.NamespaceCollection.Name)]
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
        reading.Notes.ShouldBe(["nf_tables: 10 source-NAT rules", "iptables-legacy nat: 2 source-NAT rules", "ip6tables-legacy nat: 1 source-NAT rule"]);
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
        reading.Notes.Count.ShouldBe(3);
        reading.Notes[0].ShouldBe("nf_tables: no source-NAT rule");
        // No legacy table here: ip_tables_names is empty (or absent where ip_tables is a module not loaded).
        reading.Notes[1].ShouldStartWith("iptables-legacy: none (");
        reading.Notes[2].ShouldStartWith("ip6tables-legacy: none (");
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
        var reading = OnAThreadOf(() =>
        {
            BecomeUser(user);
            return NatRulesReader.Read();
        });

        reading.Rules.ShouldBeEmpty();
        reading.Complete.ShouldBeFalse();
        var nft = reading.Refusals.Where(r => r.Source == "nf_tables rule dump").ShouldHaveSingleItem();
        nft.Errno.ShouldBe(Errno.Eperm); // nfnetlink_rcv(): netlink_net_capable(skb, CAP_NET_ADMIN)
        nft.Message.ShouldStartWith("the NAT rules could not be read (needs CAP_NET_ADMIN): nf_tables rule dump: EPERM");
        // The raw socket of the legacy tables: EPERM without CAP_NET_RAW.
        reading.Refusals.Where(r => r.Source.Contains("legacy", StringComparison.Ordinal)).ShouldAllBe(r => r.Errno == Errno.Eperm && r.Needs == NatRulesReader.LegacyNeeds);
        reading.Refusals.ShouldAllBe(r => r.NeedsPrivilege);
    }

    [NamespaceFact]
    public void With_the_network_capabilities_but_not_root_the_legacy_tables_are_refused_for_what_they_take()
    {
        // A plugin given cap_net_admin,cap_net_raw as file capabilities: the nft rules are read; the
        // legacy table names (0440 root) are not, and the refusal says what it takes instead.
        EnsureTools();
        using var ns = new ThrowawayNamespace("natrules-caps");
        Command.MustSucceed("ip", "netns", "exec", ns.Name, "bash", Fixture("install-rules.sh"));
        using var user = new ThrowawayUser("natcaps");

        var reading = OnAThreadOf(() =>
        {
            // Entered as root, left never: the thread ends with its reduced credentials.
            _ = NamespaceSwitch.Enter($"/run/netns/{ns.Name}", out var errno) ?? throw new InvalidOperationException(Errno.Describe(errno));
            Libc.syscall(IsArm64 ? 167 : 157, 8, 1, 0, 0).ShouldBe(0); // prctl(PR_SET_KEEPCAPS, 1)
            BecomeUser(user);
            SetEffectiveCapabilities((1u << 12) | (1u << 13)); // CAP_NET_ADMIN, CAP_NET_RAW
            return NatRulesReader.Read();
        });

        reading.Rules.Select(r => r.Describe()).ShouldBe(Expected("expected-nft.txt"));
        // ip_tables_names and ip6_tables_names alike: EACCES, and the refusal names what it takes.
        reading.Refusals.Select(r => r.Source).ShouldBe(["iptables-legacy nat table", "ip6tables-legacy nat table"]);
        reading.Refusals.ShouldAllBe(r => r.Errno == Errno.Eacces);
        reading.Refusals[0].Message.ShouldStartWith($"the NAT rules could not be read (needs {NatRulesReader.LegacyNamesNeeds}): iptables-legacy nat table: EACCES");
    }

    private static bool IsArm64 => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64;

    /// <summary>
    /// The calling thread becomes <paramref name="user"/> entirely: no supplementary group, its gid,
    /// its uid (raw syscalls: glibc's wrappers would change every thread). The group matters: a
    /// thread still in group root may read the 0440 root:root ip_tables_names.
    /// </summary>
    private static void BecomeUser(ThrowawayUser user)
    {
        Libc.syscall(Libc.SysSetgroups, 0, 0, 0, 0).ShouldBe(0);
        Libc.syscall(IsArm64 ? 149 : 119, user.Gid, user.Gid, user.Gid, 0).ShouldBe(0); // setresgid
        Libc.syscall(IsArm64 ? 147 : 117, user.Uid, user.Uid, user.Uid, 0).ShouldBe(0); // setresuid
    }

    /// <summary>capset(2) of the calling thread: <paramref name="effective"/> (low 32), permitted as it is.</summary>
    private static void SetEffectiveCapabilities(uint effective)
    {
        // struct __user_cap_header_struct { version, pid 0: this thread }, two __user_cap_data_struct.
        var header = System.Runtime.InteropServices.Marshal.AllocHGlobal(8);
        var data = System.Runtime.InteropServices.Marshal.AllocHGlobal(24);
        try
        {
            System.Runtime.InteropServices.Marshal.WriteInt32(header, 0x20080522); // _LINUX_CAPABILITY_VERSION_3
            System.Runtime.InteropServices.Marshal.WriteInt32(header, 4, 0);
            Libc.syscall(Libc.SysCapget, header, data, 0, 0).ShouldBe(0);
            System.Runtime.InteropServices.Marshal.WriteInt32(data, 0, (int)effective);
            System.Runtime.InteropServices.Marshal.WriteInt32(data, 12, 0);
            Libc.syscall(Libc.SysCapset, header, data, 0, 0).ShouldBe(0);
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeHGlobal(header);
            System.Runtime.InteropServices.Marshal.FreeHGlobal(data);
        }
    }

    /// <summary>Work on a thread of its own (which may change its credentials: it ends after).</summary>
    private static T OnAThreadOf<T>(Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw new InvalidOperationException(failure.Message, failure);
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
