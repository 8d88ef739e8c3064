namespace EphemeralPorts.Model;

/// <summary>TCP states as numbered in include/net/tcp_states.h (the <c>st</c> column of /proc/net/tcp).</summary>
public static class TcpState
{
    public const byte Established = 0x01;
    public const byte SynSent = 0x02;
    public const byte SynRecv = 0x03;
    public const byte FinWait1 = 0x04;
    public const byte FinWait2 = 0x05;
    public const byte TimeWait = 0x06;
    public const byte Close = 0x07;
    public const byte CloseWait = 0x08;
    public const byte LastAck = 0x09;
    public const byte Listen = 0x0A;
    public const byte Closing = 0x0B;
    public const byte NewSynRecv = 0x0C;
    public const byte BoundInactive = 0x0D;

    public static string Name(byte state) => state switch
    {
        Established => "ESTABLISHED",
        SynSent => "SYN_SENT",
        SynRecv => "SYN_RECV",
        FinWait1 => "FIN_WAIT1",
        FinWait2 => "FIN_WAIT2",
        TimeWait => "TIME_WAIT",
        Close => "CLOSE",
        CloseWait => "CLOSE_WAIT",
        LastAck => "LAST_ACK",
        Listen => "LISTEN",
        Closing => "CLOSING",
        NewSynRecv => "NEW_SYN_RECV",
        BoundInactive => "BOUND_INACTIVE",
        _ => $"STATE_{state:X2}",
    };
}
