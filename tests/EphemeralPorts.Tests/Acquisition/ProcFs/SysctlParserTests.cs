using EphemeralPorts.Plugin;
using EphemeralPorts.Acquisition.ProcFs;

namespace EphemeralPorts.Tests.Acquisition.ProcFs;

public class SysctlParserTests
{
    private const string Where = "/proc/sys/net/ipv4/x";

    [Theory]
    [InlineData("32768\t60999\n", 32768, 60999)]
    [InlineData("40000 40009\n", 40000, 40009)]
    [InlineData("1024 65535", 1024, 65535)]
    [InlineData("50000\t50000\n", 50000, 50000)]
    public void Port_range(string text, int low, int high)
    {
        var range = SysctlParser.ParsePortRange(text, Where);
        range.Low.ShouldBe(low);
        range.High.ShouldBe(high);
        range.Size.ShouldBe(high - low + 1);
    }

    [Theory]
    [InlineData("60999\t32768\n", "low port 60999 is above high port 32768")]
    [InlineData("0 100\n", "port 0 is outside 1-65535")]
    [InlineData("1024 70000\n", "port 70000 is outside 1-65535")]
    [InlineData("1024 123456\n", "'123456' is not a port number")]
    [InlineData("-1 100\n", "'-1' is not a port number")]
    [InlineData("32768\n", "expected two ports, found '32768\\n'")]
    [InlineData("", "expected two ports, found ''")]
    [InlineData("a b\n", "'a' is not a port number")]
    [InlineData("1 2 3\n", "expected two ports, found '1 2 3\\n'")]
    [InlineData("1 2\n3 4\n", "expected a single line")]
    public void Bad_port_range_names_file_line_and_reason(string text, string reason) =>
        Should.Throw<CheckException>(() => SysctlParser.ParsePortRange(text, Where)).Message.ShouldBe($"{Where} line 1: {reason}");

    [Theory]
    [InlineData("\n", "")]
    [InlineData("", "")]
    [InlineData("40000-40003,40007\n", "40000-40003,40007")]
    [InlineData("8080\n", "8080")]
    [InlineData("1-3,2-5,9\n", "1-5,9")]
    public void Reserved_ports(string text, string canonical) =>
        SysctlParser.ParseReservedPorts(text, Where).ToString().ShouldBe(canonical);

    [Theory]
    [InlineData("40003-40000\n", "range '40003-40000' runs backwards")]
    [InlineData("40000,,1\n", "'' is not a port number")]
    [InlineData("70000\n", "port 70000 is outside 1-65535")]
    [InlineData("80;443\n", "'80;443' is not a port number")]
    [InlineData("0x50\n", "'0x50' is not a port number")]
    public void Bad_reserved_ports(string text, string reason) =>
        Should.Throw<CheckException>(() => SysctlParser.ParseReservedPorts(text, Where)).Message.ShouldBe($"{Where} line 1: {reason}");

    [Theory]
    [InlineData("2\n", 2)]
    [InlineData("0", 0)]
    public void Integer_sysctl(string text, int value) => SysctlParser.ParseInt(text, Where, 0, 2).ShouldBe(value);

    [Theory]
    [InlineData("3\n", "3 is outside 0..2")]
    [InlineData("yes\n", "expected an integer, found 'yes'")]
    [InlineData("99999999999\n", "expected an integer, found '99999999999'")]
    public void Bad_integer_sysctl(string text, string reason) =>
        Should.Throw<CheckException>(() => SysctlParser.ParseInt(text, Where, 0, 2)).Message.ShouldBe($"{Where} line 1: {reason}");
}
