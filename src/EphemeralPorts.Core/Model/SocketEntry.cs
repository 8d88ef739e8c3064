namespace EphemeralPorts.Model;

public enum Transport
{
    Tcp,
    Udp,
}

/// <summary>
/// One socket as any reader sees it. <see cref="TimeWaitRemainingMs"/> is the time left on a
/// TIME_WAIT socket's timer (from which its age follows), or -1 where not known.
/// </summary>
public readonly record struct SocketEntry(
    Transport Transport,
    IpAddress LocalAddress,
    int LocalPort,
    IpAddress RemoteAddress,
    int RemotePort,
    byte State,
    long TimeWaitRemainingMs,
    long Inode);
