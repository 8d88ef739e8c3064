using EphemeralPorts.Rendering;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Metrics;

/// <summary>
/// The perfdata and the Prometheus text made from the metric catalogue, for the shapes no fixture
/// has yet (a bind(addr, 0) figure with and without an address, an --all-namespaces overview with
/// labelled namespaces, UDP only): the expected files were written by the hand-made renderers
/// before the catalogue replaced them, so that the catalogue is shown to change no output.
/// </summary>
public class CatalogueRenderingTests
{
    private static string Expected(string name) =>
        File.ReadAllText(Path.Combine(Repo.Root, "tests", "EphemeralPorts.Tests", "Metrics", "expected", name));

    public static TheoryData<string> Shapes => ["format-json+bind+namespaces", "format-json+bind-no-address", "protocol-udp-only+namespaces"];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Perfdata_is_what_it_was(string shape)
    {
        var report = Reports.All().Single(r => r.Name == shape).Report;
        (string.Join(' ', Headline.PerfData(report)) + "\n").ShouldBe(Expected(shape + ".perfdata"));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Prometheus_is_what_it_was(string shape)
    {
        var report = Reports.All().Single(r => r.Name == shape).Report;
        PrometheusReport.Render(report).ShouldBe(Expected(shape + ".prom"));
    }
}
