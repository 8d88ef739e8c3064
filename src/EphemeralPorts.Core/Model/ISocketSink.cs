namespace EphemeralPorts.Model;

/// <summary>Where a socket source puts the sockets it finds: the calculator, or a test's list.</summary>
public interface ISocketSink
{
    void Add(in SocketEntry socket);
}
