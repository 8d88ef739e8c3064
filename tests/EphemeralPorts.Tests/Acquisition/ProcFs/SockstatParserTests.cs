using EphemeralPorts.Acquisition.ProcFs;

namespace EphemeralPorts.Tests.Acquisition.ProcFs;

public class SockstatParserTests
{
    // As a 6.x kernel prints them.
    private const string Sockstat = """
        sockets: used 187
        TCP: inuse 12 orphan 0 tw 7 alloc 15000 mem 2
        UDP: inuse 3 mem 1
        UDPLITE: inuse 0
        RAW: inuse 0
        FRAG: inuse 0 memory 0

        """;

    private const string Sockstat6 = """
        TCP6: inuse 4
        UDP6: inuse 2
        UDPLITE6: inuse 0
        RAW6: inuse 0
        FRAG6: inuse 0 memory 0

        """;

    [Fact]
    public void The_hint_is_the_namespaces_hashed_sockets_of_both_families_and_its_time_waits() =>
        SockstatParser.TcpSockets(Sockstat, Sockstat6).ShouldBe(12 + 7 + 4);

    [Fact]
    public void Without_ipv6_there_is_no_sockstat6_and_ipv4_alone_counts() =>
        SockstatParser.TcpSockets(Sockstat, null).ShouldBe(12 + 7);

    [Theory]
    [InlineData("", "TCP6: inuse 1\n")]
    [InlineData("sockets: used 3\nUDP: inuse 1 mem 0\n", "TCP6: inuse 1\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw x alloc 2 mem 0\n", "TCP6: inuse 1\n")]
    [InlineData("TCP: inuse 1 orphan 0 alloc 2 mem 0\n", "TCP6: inuse 1\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw -1 alloc 2 mem 0\n", "TCP6: inuse 1\n")]
    [InlineData("TCP: inuse 99999999999999999999 orphan 0 tw 1 alloc 2 mem 0\n", "TCP6: inuse 1\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw 1 alloc 2 mem 0\n", "UDP6: inuse 1\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw 1 alloc 2 mem 0\n", "TCP6: inuse\n")]
    public void Anything_else_gives_no_hint(string sockstat, string sockstat6) =>
        SockstatParser.TcpSockets(sockstat, sockstat6).ShouldBeNull();
}
