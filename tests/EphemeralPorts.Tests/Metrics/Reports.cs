using EphemeralPorts.Acquisition;
using EphemeralPorts.Check;
using EphemeralPorts.Cli;
using EphemeralPorts.Kinds;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Metrics;

/// <summary>
/// Reports to render: the fixtures' own, and the same with what no fixture has yet (a bind(addr, 0)
/// figure, an --all-namespaces overview), so that every declaration of the catalogue is rendered.
/// </summary>
internal static class Reports
{
    /// <summary>The report of a fixture tree, checked in-process with the fixture's arguments (less --format).</summary>
    public static CheckReport Of(string fixture, params string[] extra)
    {
        var dir = Path.Combine(Repo.Fixtures, fixture);
        var args = File.Exists(Path.Combine(dir, "args"))
            ? File.ReadAllLines(Path.Combine(dir, "args")).Where(a => a.Length > 0).ToList()
            : [];
        var format = args.IndexOf("--format");
        if (format >= 0)
        {
            args.RemoveRange(format, 2);
        }

        args.AddRange(["--proc-root", Path.Combine(dir, "proc")]);
        args.AddRange(extra);
        var settings = ArgumentParser.Parse(args).Settings!;
        using var run = new RunContext(new Host(settings.Check.Reading.ProcRoot), settings.Check.Timeout);
        return PortCheck.Run(settings.Check, run).ShouldBeOfType<CheckReport>();
    }

    /// <summary>The report with a bind(addr, 0) figure: the reading is one that sees bind() before connect().</summary>
    public static CheckReport WithBind(CheckReport report, bool anAddress = true)
    {
        var usage = report.Shown.Usage;
        var addresses = anAddress
            ? new List<AddressBindUsage> { new(IpAddress.Parse("10.0.0.7"), 6, 9, 2), new(IpAddress.Parse("fd00::7"), 1, 9, 1) }
            : [];
        var tcp = usage.Tcp! with { Bind = new BindUsage(addresses) };
        return report with { Shown = report.Shown with { Usage = usage with { Tcp = tcp } } };
    }

    /// <summary>The report as --all-namespaces makes it: the shown namespace the worst of three, one skipped.</summary>
    public static CheckReport WithNamespaces(CheckReport report)
    {
        var shown = report.Shown with { Name = "pod-a", Inode = 4026532288, Container = "0123456789ab", Pod = "5f1c\"x\\y" };
        var ok = report.Shown with
        {
            Name = "idle",
            Inode = 4026531840,
            Evaluation = report.Shown.Evaluation with { State = ServiceState.Ok },
            Usage = report.Shown.Usage with { Udp = null },
        };
        var warning = report.Shown with { Name = "web", Evaluation = report.Shown.Evaluation with { State = ServiceState.Warning } };
        return report with { Shown = shown, Namespaces = new NamespaceOverview([shown, warning, ok], ["3 namespaces of processes that exited"]) };
    }

    /// <summary>The report of a namespace that NATs: a 10-port SNAT range full for one key, the table at 90%.</summary>
    public static CheckReport WithNat(CheckReport report)
    {
        var key = new NatKey(CtAddress.Parse("203.0.113.1"), CtAddress.Parse("198.51.100.7"), 443, 6, 0);
        var keys = new List<NatKeyUsage>
        {
            new(key, 11, 10, 2, new NatPortRange(40000, 40009), "a test", 1),
            new(key with { DestinationPort = 80 }, 3, 3, 0, new NatPortRange(40000, 40009), "a test", 0),
        };
        var table = new ConntrackTable(900, 1000, new ConntrackStatistics { Cpus = 2, InsertFailed = 17, Drop = 17, EarlyDrop = 0 }, "a test");
        var readings = new Readings(report.Shown.Usage, new Dictionary<IResource, object> { [NatResource.Instance] = new NatReading(table, keys, null, SoftEvictable: true) });
        return report with { Shown = report.Shown with { Readings = readings } };
    }

    /// <summary>Every shape of report the catalogue's declarations differ on.</summary>
    public static IEnumerable<(string Name, CheckReport Report)> All()
    {
        foreach (var fixture in new[] { "format-json", "protocol-tcp-only", "protocol-udp-only", "idle-default-range", "no-port-left", "udp-exhausted", "range-thresholds-leave-perfdata-empty" })
        {
            var report = Of(fixture);
            yield return (fixture, report);
            if (report.Shown.Usage.Tcp is not null)
            {
                yield return (fixture + "+bind", WithBind(report));
                yield return (fixture + "+bind-no-address", WithBind(report, anAddress: false));
                yield return (fixture + "+bind+namespaces", WithNamespaces(WithBind(report)));
            }

            yield return (fixture + "+namespaces", WithNamespaces(report));
        }

        yield return ("format-json+nat", WithNat(Of("format-json")));
        yield return ("format-json+nat+namespaces", WithNamespaces(WithNat(Of("format-json"))));
    }
}
