using System.Buffers.Binary;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The data of an xtables SNAT or MASQUERADE target, as iptables-legacy hands it to the kernel
/// (after struct xt_entry_target) and as iptables-nft puts it into an nft <c>target</c> expression
/// (NFTA_TARGET_INFO). Which struct it is depends on the target, its revision and the family, as
/// registered in net/netfilter/xt_nat.c and xt_MASQUERADE.c:
/// SNAT rev 0 (IPv4 only) and MASQUERADE for IPv4: struct nf_nat_ipv4_multi_range_compat;
/// SNAT rev 1 and MASQUERADE for IPv6: struct nf_nat_range; SNAT rev 2: struct nf_nat_range2
/// (include/uapi/linux/netfilter/nf_nat.h). Flags are host-endian, ports big-endian. No I/O here.
/// </summary>
public static class XtNatTarget
{
    private const uint MapIps = 1 << 0;
    private const uint ProtoSpecified = 1 << 1;

    /// <summary>struct nf_nat_ipv4_multi_range_compat: rangesize, then one nf_nat_ipv4_range (flags, min_ip, max_ip, min, max).</summary>
    private const int CompatLength = 20;

    /// <summary>struct nf_nat_range: flags, min_addr[16], max_addr[16], min_proto, max_proto (nf_nat_range2 adds base_proto).</summary>
    private const int RangeLength = 40;

    /// <summary>Whether <paramref name="name"/> is a source-NAT target this code reads.</summary>
    public static bool IsSourceNat(string name) => name is "SNAT" or "MASQUERADE";

    /// <summary>
    /// The rule a SNAT or MASQUERADE target gives. A revision this code does not know gives a rule
    /// whose ports are unreadable (it may apply, its range is not known), not an error: a new kernel
    /// must not make the check fail. Data too short for its struct is malformed.
    /// </summary>
    public static NatRule Parse(string name, int revision, NatFamily family, ReadOnlySpan<byte> data, int? protocol, string? outputInterface, string origin)
    {
        var kind = name == "MASQUERADE" ? NatRuleKind.Masquerade : NatRuleKind.Snat;
        var where = $"{origin}: {name} target (revision {revision})";
        var compat = revision == 0 && family == NatFamily.IPv4;
        var range = (name, revision) is ("SNAT", 1 or 2) || (name == "MASQUERADE" && revision == 0 && family == NatFamily.IPv6);
        if (!compat && !range)
        {
            return new NatRule(family, kind, null, null, NatRangeFlags.None, protocol, outputInterface, origin)
            {
                Unreadable = $"{name} revision {revision} for {family} is a layout this reader does not know",
            };
        }

        var needed = compat ? CompatLength : RangeLength + (revision == 2 ? 2 : 0);
        if (data.Length < needed)
        {
            throw new CheckException($"{where}: {data.Length} bytes of target data, its struct needs {needed}");
        }

        uint flags;
        NatAddressRange? addresses = null;
        int minPort, maxPort;
        if (compat)
        {
            var rangesize = BinaryPrimitives.ReadUInt32LittleEndian(data);
            if (rangesize != 1)
            {
                // xt_nat_checkentry_v0() and masquerade_tg_check() refuse any other count.
                throw new CheckException($"{where}: rangesize {rangesize}, the kernel accepts only 1");
            }

            flags = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            if ((flags & MapIps) != 0)
            {
                addresses = NatAddressRange.From(CtAddress.FromBytes(data.Slice(8, 4)), CtAddress.FromBytes(data.Slice(12, 4)));
            }

            minPort = BinaryPrimitives.ReadUInt16BigEndian(data[16..]);
            maxPort = BinaryPrimitives.ReadUInt16BigEndian(data[18..]);
        }
        else
        {
            flags = BinaryPrimitives.ReadUInt32LittleEndian(data);
            if ((flags & MapIps) != 0)
            {
                var length = family == NatFamily.IPv6 ? 16 : 4;
                addresses = NatAddressRange.From(CtAddress.FromBytes(data.Slice(4, length)), CtAddress.FromBytes(data.Slice(20, length)));
            }

            minPort = BinaryPrimitives.ReadUInt16BigEndian(data[36..]);
            maxPort = BinaryPrimitives.ReadUInt16BigEndian(data[38..]);
        }

        // The ports count only with NF_NAT_RANGE_PROTO_SPECIFIED (nf_nat_l4proto_unique_tuple(),
        // which takes them in either order).
        NatPortRange? ports = (flags & ProtoSpecified) != 0 ? new NatPortRange(minPort, maxPort) : null;
        return new NatRule(family, kind, addresses, ports, NatRule.FlagsFrom(flags), protocol, outputInterface, origin);
    }
}
