using System.Runtime.InteropServices;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// Reads the source-NAT rules in force in the calling thread's network namespace, natively (no
/// nft or iptables binary): the nf_tables rules through an NFT_MSG_GETRULE dump on
/// NETLINK_NETFILTER (native nat and masq expressions and iptables-nft's xtables targets), and the
/// iptables-legacy nat tables of IPv4 and IPv6 through IPT_SO_GET_INFO/IPT_SO_GET_ENTRIES on a raw
/// socket. Both need CAP_NET_ADMIN in the user namespace that owns the network namespace
/// (nfnetlink_rcv() answers EPERM without it; do_ipt_get_ctl() too, and a raw socket needs
/// CAP_NET_RAW): a refusal is returned, not thrown, for the caller to say that the rules could not
/// be read. Malformed replies are a <see cref="CheckException"/>.
/// </summary>
public static partial class NatRulesReader
{
    private const int AfInet = 2;
    private const int AfInet6 = 10;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int IpprotoRaw = 255;
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SoGetInfo = 64;
    private const int SoGetEntries = 65;
    private const int Eopnotsupp = 95;

    /// <summary>How often a dump the ruleset changed under (NLM_F_DUMP_INTR) is read again.</summary>
    private const int DumpAttempts = 3;

    /// <summary>A dump larger than this is refused: no ruleset is that large, a kernel that keeps sending is broken.</summary>
    private const long MaxDumpBytes = 256L * 1024 * 1024;

    /// <summary>What the nf_tables dump takes (nfnetlink_rcv(): netlink_net_capable(skb, CAP_NET_ADMIN)).</summary>
    public const string NftNeeds = "CAP_NET_ADMIN";

    /// <summary>What a legacy table takes: a raw socket (CAP_NET_RAW), IPT_SO_GET_* (do_ipt_get_ctl(): CAP_NET_ADMIN).</summary>
    public const string LegacyNeeds = "CAP_NET_ADMIN and CAP_NET_RAW";

    /// <summary>What seeing which legacy tables exist takes: ip_tables_names is 0440 root (xt_proto_init()).</summary>
    public const string LegacyNamesNeeds = "root, or CAP_DAC_READ_SEARCH, to see which iptables-legacy tables exist";

    /// <summary>The rules of the calling thread's network namespace; each way of reading that was refused is noted.</summary>
    public static NatRulesReading Read()
    {
        var rules = new List<NatRule>();
        var refusals = new List<NatRulesRefusal>();
        var notes = new List<string>();
        if (ReadNftables(out var errno, notes) is { } nft)
        {
            rules.AddRange(nft);
        }
        else
        {
            refusals.Add(new NatRulesRefusal("nf_tables rule dump", errno, NftNeeds));
        }

        foreach (var family in new[] { NatFamily.IPv4, NatFamily.IPv6 })
        {
            if (ReadLegacy(family, out var refusal, notes) is { } legacy)
            {
                rules.AddRange(legacy);
            }
            else
            {
                refusals.Add(refusal!);
            }
        }

        return new NatRulesReading(rules, refusals) { Notes = notes };
    }

    /// <summary>The nf_tables NAT rules; empty where the kernel has no nf_tables; null with the errno when refused. What was read is said in <paramref name="notes"/>.</summary>
    public static IReadOnlyList<NatRule>? ReadNftables(out int errno, List<string>? notes = null)
    {
        using var socket = NetlinkSocket.Open(NftRulesParser.NetlinkNetfilter, out errno);
        if (socket is null)
        {
            // A kernel without nfnetlink has no nf_tables rules at all.
            if (errno is Errno.EprotoNoSupport or Errno.EafNoSupport)
            {
                notes?.Add("nf_tables: none (this kernel has no NETLINK_NETFILTER)");
                errno = 0;
                return [];
            }

            return null;
        }

        var buffer = Acquisition.ReadBuffers.Rent();
        try
        {
            return DumpRules(socket, buffer, out errno, notes);
        }
        finally
        {
            Acquisition.ReadBuffers.Return(buffer);
        }
    }

    private static IReadOnlyList<NatRule>? DumpRules(NetlinkSocket socket, byte[] buffer, out int errno, List<string>? notes)
    {
        for (var attempt = 1; attempt <= DumpAttempts; attempt++)
        {
            var sendError = socket.Send(NftRulesParser.DumpRequest((uint)attempt));
            if (sendError != 0)
            {
                errno = sendError;
                return null;
            }

            var parser = new NftRulesParser();
            long total = 0;
            while (!parser.Done)
            {
                var received = socket.Receive(buffer);
                if (received < 0)
                {
                    errno = -received;
                    return null;
                }

                if (received == 0)
                {
                    throw new CheckException("nft rule dump: the kernel closed the dump early");
                }

                total += received;
                if (total > MaxDumpBytes)
                {
                    throw new CheckException($"nft rule dump: more than {MaxDumpBytes} bytes");
                }

                parser.Feed(buffer.AsSpan(0, received));
            }

            switch (parser.Error)
            {
                case 0 when !parser.Interrupted:
                    notes?.Add(Count("nf_tables", parser.Rules.Count));
                    errno = 0;
                    return parser.Rules;
                case 0:
                    continue; // the ruleset changed during the dump: read it again
                case Errno.Einval or Errno.Enoent or Eopnotsupp:
                    // A kernel without nf_tables: nfnetlink_rcv_msg() finds no subsystem 10 (after
                    // request_module("nfnetlink-subsys-10") where modules are enabled: a modular
                    // kernel loads nf_tables here, as `nft list ruleset` does) and answers EINVAL.
                    // The request itself is fixed and valid, so there are no nf_tables rules.
                    notes?.Add($"nf_tables: none (the kernel answered {Errno.Describe(parser.Error)}: no nf_tables)");
                    errno = 0;
                    return [];
                case Errno.Eperm or Errno.Eacces:
                    errno = parser.Error;
                    return null;
                default:
                    throw new CheckException($"nft rule dump failed: {Errno.Describe(parser.Error)}");
            }
        }

        throw new CheckException($"nft rule dump: the ruleset changed during each of {DumpAttempts} dumps");
    }

    /// <summary>
    /// The SNAT and MASQUERADE rules of the legacy nat table of <paramref name="family"/>; empty when
    /// there is none; null with the refusal when refused. The raw socket comes first (without
    /// CAP_NET_RAW nothing else can be read); then the table is looked for in
    /// /proc/thread-self/net/ip_tables_names: asking IPT_SO_GET_INFO for "nat" would make it
    /// (xt_find_table_lock() instantiates the table in the namespace, and
    /// xt_request_find_table_lock() loads iptable_nat where it is a module), seen here on 6.18:
    /// a monitoring read must change nothing.
    /// </summary>
    public static IReadOnlyList<NatRule>? ReadLegacy(NatFamily family, out NatRulesRefusal? refusal, List<string>? notes = null)
    {
        var source = family == NatFamily.IPv4 ? "iptables-legacy nat table" : "ip6tables-legacy nat table";
        var tool = family == NatFamily.IPv4 ? "iptables-legacy" : "ip6tables-legacy";
        var fd = socket(family == NatFamily.IPv4 ? AfInet : AfInet6, SockRaw | SockCloexec, IpprotoRaw);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            refusal = errno is Errno.EafNoSupport ? null : new NatRulesRefusal(source, errno, LegacyNeeds);
            if (refusal is null)
            {
                notes?.Add($"{tool}: none (no IPv6 in this kernel)");
            }

            return refusal is null ? [] : null; // EAFNOSUPPORT: no IPv6 in this kernel, so no ip6tables either
        }

        try
        {
            var names = family == NatFamily.IPv4 ? "/proc/thread-self/net/ip_tables_names" : "/proc/thread-self/net/ip6_tables_names";
            var text = TableNames(names, out var errno);
            if (text is null)
            {
                refusal = errno == 0 ? null : new NatRulesRefusal(source, errno, LegacyNamesNeeds);
                if (refusal is null)
                {
                    notes?.Add($"{tool}: none ({names} is absent: no legacy table)");
                }

                return refusal is null ? [] : null;
            }

            if (!text.Split('\n').Contains("nat"))
            {
                notes?.Add($"{tool}: none (no nat table in {names})");
                refusal = null;
                return [];
            }

            var level = family == NatFamily.IPv4 ? SolIp : SolIpv6;
            var info = new byte[XtTablesParser.InfoLength];
            "nat"u8.CopyTo(info);
            errno = GetSockOpt(fd, level, SoGetInfo, info, out var infoLength);
            if (errno != 0)
            {
                // ENOENT: gone since the names were read.
                refusal = errno == Errno.Enoent ? null : new NatRulesRefusal(source, errno, LegacyNeeds);
                if (refusal is null)
                {
                    notes?.Add($"{tool}: none (its nat table went away while it was read)");
                }

                return refusal is null ? [] : null;
            }

            if (infoLength != info.Length)
            {
                throw new CheckException($"{source}: IPT_SO_GET_INFO gave {infoLength} bytes, expected {info.Length}");
            }

            var size = XtTablesParser.EntriesSize(info, family);
            var get = new byte[XtTablesParser.GetEntriesHeaderLength + size];
            "nat"u8.CopyTo(get);
            BitConverter.TryWriteBytes(get.AsSpan(32), (uint)size);
            errno = GetSockOpt(fd, level, SoGetEntries, get, out _);
            if (errno is Errno.Eagain or Errno.Enoent)
            {
                // EAGAIN: the table changed size since IPT_SO_GET_INFO (get_entries()); ENOENT: it is gone.
                throw new CheckException($"{source} changed while it was read ({Errno.Describe(errno)}); read it again");
            }

            if (errno != 0)
            {
                refusal = new NatRulesRefusal(source, errno, LegacyNeeds);
                return null;
            }

            var rules = XtTablesParser.Parse(info, get.AsSpan(XtTablesParser.GetEntriesHeaderLength), family);
            notes?.Add(Count($"{tool} nat", rules.Count));
            refusal = null;
            return rules;
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>
    /// The legacy tables of the calling thread's namespace (the file is in the thread's net
    /// directory, hence read here and not through a ProcRoot, whose trees and whose "permission
    /// denied" is an error: here it is a refusal). Null with errno 0 when the file is absent
    /// (ip_tables not built or not loaded: no legacy table exists); null with EACCES when only
    /// root may read it (0440, proc_create_net_data() in xt_proto_init()).
    /// </summary>
    private static string? TableNames(string path, out int errno)
    {
        var fd = Libc.Openat(Libc.AtFdcwd, path, Libc.ORdonly | Libc.ONonblock | Libc.OCloexec, 0);
        if (fd < 0)
        {
            var error = Libc.LastError;
            errno = error is Errno.Enoent or Errno.Enotdir ? 0 : error;
            return null;
        }

        try
        {
            // A few table names (filter, nat, mangle, raw, security): a page is plenty; more is not this file.
            var buffer = new byte[4096];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = Libc.Read(fd, buffer.AsSpan(total))) != 0)
            {
                if (read < 0)
                {
                    throw new CheckException($"{path}: read error: {Errno.Describe(Libc.LastError)}");
                }

                total += read;
            }

            if (total == buffer.Length)
            {
                throw new CheckException($"{path}: larger than {buffer.Length} bytes, not a list of table names");
            }

            errno = 0;
            return System.Text.Encoding.ASCII.GetString(buffer, 0, total);
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    private static string Count(string source, int rules) => rules switch
    {
        0 => $"{source}: no source-NAT rule",
        1 => $"{source}: 1 source-NAT rule",
        _ => $"{source}: {rules.ToString(System.Globalization.CultureInfo.InvariantCulture)} source-NAT rules",
    };

    private static unsafe int GetSockOpt(int fd, int level, int option, byte[] buffer, out int length)
    {
        var size = (uint)buffer.Length;
        fixed (byte* b = buffer)
        {
            var result = getsockopt(fd, level, option, b, &size);
            length = (int)size;
            return result == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getsockopt(int fd, int level, int option, byte* value, uint* length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
