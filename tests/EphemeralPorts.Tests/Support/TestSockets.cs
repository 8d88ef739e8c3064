using System.Net;
using System.Net.Sockets;
using System.Text;
using EphemeralPorts.Model;

namespace EphemeralPorts.Tests.Support;

/// <summary>Real sockets for the tests that read a namespace they made, and the model as text to compare.</summary>
public static class TestSockets
{
    public static Socket Listen(IPEndPoint at, List<Socket> held)
    {
        var listener = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        held.Add(listener);
        listener.Bind(at);
        listener.Listen(1024);
        return listener;
    }

    public static void Connect(Socket listener, IPEndPoint to, int count, int closeFirst, List<Socket> held)
    {
        for (var i = 0; i < count; i++)
        {
            var client = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (to.AddressFamily == AddressFamily.InterNetworkV6)
            {
                client.DualMode = to.Address.IsIPv4MappedToIPv6;
            }

            client.Connect(to);
            var accepted = listener.Accept();
            if (i < closeFirst)
            {
                // The side that closes first keeps the TIME_WAIT, on its ephemeral port.
                client.Close();
                accepted.Close();
            }
            else
            {
                held.Add(client);
                held.Add(accepted);
            }
        }
    }

    public static string Describe(PortUsage usage)
    {
        var text = new StringBuilder();
        var tcp = usage.Tcp!;
        text.AppendLine($"capacity {tcp.Capacity} in use {tcp.PortsInUse} tw {tcp.TimeWait} reusable {tcp.ReusableTimeWait} exclusive {tcp.ExclusivePortCount}");
        foreach (var (state, count) in tcp.StateCounts.OrderBy(s => s.Key))
        {
            text.AppendLine($"state {state}: {count}");
        }

        foreach (var t in tcp.Tuples)
        {
            text.AppendLine($"{t.Tuple}: used {t.Used} tw {t.TimeWait} reusable {t.ReusableTimeWait}");
        }

        foreach (var e in tcp.Exclusive)
        {
            text.AppendLine($"exclusive {e.Address}:{e.Port} state {e.State}");
        }

        text.AppendLine($"udp used {usage.Udp!.Used} of {usage.Udp.Capacity}, {usage.Udp.Sockets} sockets");
        return text.ToString();
    }
}
