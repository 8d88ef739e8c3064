using EphemeralPorts.Kinds;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Metrics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// Issue 21 item 5: where the NAT keys could not be read (no CAP_NET_ADMIN, a /proc tree), the
/// kind is UNKNOWN only where the namespace may well NAT (it tracks connections and forwards
/// packets); elsewhere a detail line says what was not read, and --ignore-nat takes it out.
/// </summary>
public class NatUnreadTests
{
    private static readonly ConntrackTable Table = new(42, 262144, null, "a test");

    private static Readings With(NatReading nat) =>
        new(Reports.Of("format-json").Shown.Usage, new Dictionary<IResource, object> { [NatResource.Instance] = nat });

    [Fact]
    public void A_forwarding_namespace_whose_keys_were_not_read_is_unknown_and_says_why()
    {
        var nat = new NatReading(Table, null, "NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN", false) { Forwarding = "net.ipv4.ip_forward = 1" };
        var verdict = NatTupleKind.Instance.Evaluate(With(nat), new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85"))).ShouldNotBeNull();
        verdict.State.ShouldBe(ServiceState.Unknown);
        verdict.Sentence.ShouldBe("NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN, and this namespace forwards packets (net.ipv4.ip_forward = 1) and tracks 42 connections: it may source-NAT");
        verdict.Advice.ShouldHaveSingleItem().ShouldContain("--ignore-nat");
        NatTupleKind.Instance.Details(With(nat), 0).ShouldBeEmpty("the status line says it");
    }

    [Fact]
    public void A_namespace_that_forwards_nothing_is_not_unknown_but_the_detail_says_what_was_not_read()
    {
        var nat = new NatReading(Table, null, "NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN", false);
        NatTupleKind.Instance.Evaluate(With(nat), new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85"))).ShouldBeNull();
        NatTupleKind.Instance.Details(With(nat), 0).Select(d => d.Text).ShouldBe(["NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN (this namespace forwards no packets: net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are 0)"]);
    }

    [Fact]
    public void Ignore_nat_takes_the_keys_out_and_says_so_at_v()
    {
        var nat = new NatReading(Table, null, "NAT tuples not read (--ignore-nat)", false) { Forwarding = "net.ipv4.ip_forward = 1", Ignored = true };
        NatTupleKind.Instance.Evaluate(With(nat), new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85"))).ShouldBeNull();
        NatTupleKind.Instance.Details(With(nat), 0).ShouldBeEmpty();
        NatTupleKind.Instance.Details(With(nat), 1).Select(d => d.Text).ShouldBe(["NAT tuples not read (--ignore-nat)"]);
    }

    /// <summary>A /proc tree (a copy, a fixture) has no ctnetlink: forwarding there makes the NAT part UNKNOWN, not OK.</summary>
    [Theory]
    [InlineData("1", null, 3)]
    [InlineData("0", "1", 3)]
    [InlineData("0", "0", 0)]
    [InlineData("yes", null, 3)]
    public void A_tree_that_tracks_and_forwards_is_unknown_for_nat(string ipv4, string? ipv6, int exit)
    {
        var root = Directory.CreateTempSubdirectory("cep-nat-unread-").FullName;
        try
        {
            Tree(root, ipv4, ipv6, exit);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Tree(string root, string ipv4, string? ipv6, int exit)
    {
        var tree = root;
        Copy(Path.Combine(Repo.Fixtures, "idle-default-range", "proc"), tree);
        Directory.CreateDirectory(Path.Combine(tree, "sys/net/netfilter"));
        File.WriteAllText(Path.Combine(tree, "sys/net/netfilter/nf_conntrack_count"), "7\n");
        File.WriteAllText(Path.Combine(tree, "sys/net/netfilter/nf_conntrack_max"), "1000\n");
        File.WriteAllText(Path.Combine(tree, "sys/net/ipv4/ip_forward"), ipv4 + "\n");
        if (ipv6 is not null)
        {
            Directory.CreateDirectory(Path.Combine(tree, "sys/net/ipv6/conf/all"));
            File.WriteAllText(Path.Combine(tree, "sys/net/ipv6/conf/all/forwarding"), ipv6 + "\n");
        }

        var run = Support.Plugin.InProcess("--proc-root", tree);
        run.ExitCode.ShouldBe(exit, run.Stdout);
        run.Stdout.ShouldContain("'conntrack_entries'=7;;;0;1000", Case.Sensitive, "the table is read whatever else is not");
        if (exit == 3)
        {
            run.Stdout.ShouldStartWith("EPHEMERAL PORTS UNKNOWN - NAT tuples were not read: they are read from the kernel (ctnetlink), not from a /proc tree, and this namespace forwards packets (net.", Case.Sensitive);
        }
        else
        {
            run.Stdout.ShouldContain("\nNAT tuples were not read: they are read from the kernel (ctnetlink), not from a /proc tree (this namespace forwards no packets", Case.Sensitive);
        }

        Support.Plugin.InProcess("--proc-root", tree, "--ignore-nat").ExitCode.ShouldBe(0);
    }

    private static void Copy(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }

        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }
}
