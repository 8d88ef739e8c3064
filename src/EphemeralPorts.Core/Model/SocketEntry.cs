namespace EphemeralPorts.Model;

public enum Transport
{
    Tcp,
    Udp,
}

/// <summary>
/// How a TCP socket got its local port, as its bind bucket says (<c>fastreuse</c>/<c>fastreuseport</c>):
/// only the BPF reader sees it; /proc and sock_diag leave it <see cref="Unknown"/>.
/// </summary>
public enum PortOrigin : byte
{
    /// <summary>Not seen: the model takes a connection's port for connect()'s.</summary>
    Unknown,

    /// <summary>connect() chose it (plain, or IP_BIND_ADDRESS_NO_PORT): shared per tuple.</summary>
    Connect,

    /// <summary>bind(addr, 0) or listen() let the kernel choose it: the port is lost to every connect() tuple.</summary>
    BindAnyPort,

    /// <summary>bind() to a port given by the program (or an accepted child of such a listener): lost to every tuple.</summary>
    BindFixedPort,
}

/// <summary>
/// One socket as any source sees it. <see cref="TimeWaitRemainingMs"/> is the time left on a
/// TIME_WAIT socket's timer (from which its age follows), or -1 where not known. The properties
/// after the constructor are what only the kernel's own structures show (the BPF reader); the
/// other sources leave them unknown, and the model then falls back as docs/kernel-model.md says.
/// </summary>
public readonly record struct SocketEntry(
    Transport Transport,
    IpAddress LocalAddress,
    int LocalPort,
    IpAddress RemoteAddress,
    int RemotePort,
    byte State,
    long TimeWaitRemainingMs,
    long Inode)
{
    public PortOrigin Origin { get; init; }

    /// <summary>A TIME_WAIT's own negotiated timestamps (<c>tw_ts_recent_stamp</c> non-zero); null where not seen.</summary>
    public bool? NegotiatedTimestamps { get; init; }

    /// <summary>A TIME_WAIT's age as <c>tcp_twsk_unique()</c> counts it (since <c>tw_entry_stamp</c>); -1 where not seen.</summary>
    public long TimeWaitAgeMs { get; init; } = -1;

    /// <summary>The socket's own IP_LOCAL_PORT_RANGE, where it narrows the namespace's range; null where none or not seen.</summary>
    public PortRange? OwnRange { get; init; }

    /// <summary>IPV6_V6ONLY: an IPv6 wildcard socket that does not take the port from IPv4 binds.</summary>
    public bool V6Only { get; init; }

    /// <summary>
    /// The interface index the socket is bound to (SO_BINDTODEVICE), 0 for none: a connection is
    /// matched only against sockets bound to the same device or to none
    /// (__inet_check_established(), inet_sk_bound_dev_eq()), and a TIME_WAIT bound to lo is on
    /// loopback for tcp_tw_reuse=2 (tcp_twsk_unique()). /proc/net/tcp does not show it.
    /// </summary>
    public int BoundDevice { get; init; }

    /// <summary>Whether the port came through a bind bucket, so that connect() skips it for every tuple.</summary>
    public bool PortFromBind => Origin is PortOrigin.BindAnyPort or PortOrigin.BindFixedPort;
}
