using EphemeralPorts.ProcFs;

namespace EphemeralPorts.Tests.ProcFs;

public class SockstatParserTests
{
    // As a 6.x kernel prints it.
    private const string Sockstat = """
        sockets: used 187
        TCP: inuse 12 orphan 0 tw 7 alloc 15 mem 2
        UDP: inuse 3 mem 1
        UDPLITE: inuse 0
        RAW: inuse 0
        FRAG: inuse 0 memory 0

        """;

    [Fact]
    public void The_hint_is_allocated_tcp_sockets_plus_time_wait() =>
        SockstatParser.TcpSockets(Sockstat).ShouldBe(15 + 7);

    [Theory]
    [InlineData("")]
    [InlineData("sockets: used 3\nUDP: inuse 1 mem 0\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw x alloc 2 mem 0\n")]
    [InlineData("TCP: inuse 1 orphan 0 alloc 2 mem 0\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw -1 alloc 2 mem 0\n")]
    [InlineData("TCP: inuse 1 orphan 0 tw 99999999999999999999 alloc 2 mem 0\n")]
    public void Anything_else_gives_no_hint(string text) =>
        SockstatParser.TcpSockets(text).ShouldBeNull();
}
