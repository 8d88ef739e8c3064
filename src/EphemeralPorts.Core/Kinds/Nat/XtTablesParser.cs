using System.Buffers.Binary;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// Reads an iptables-legacy (or ip6tables-legacy) table as IPT_SO_GET_INFO and IPT_SO_GET_ENTRIES
/// give it (get_info() and copy_entries_to_user() in net/ipv4/netfilter/ip_tables.c,
/// net/ipv6/netfilter/ip6_tables.c): struct ipt_getinfo, then the entries, each a struct ipt_entry
/// (ip6t_entry) with its matches and one target (struct xt_entry_target: u16 size, name[29],
/// revision, data). The SNAT and MASQUERADE targets become rules (<see cref="XtNatTarget"/>); the
/// chain of each is the built-in chain whose hook_entry..underflow holds it, or the user chain
/// named by the ERROR entry that opens it. Read as matches: the protocol (<c>-p</c>) and the output
/// interface (<c>-o</c>) of the entry's ipt_ip; the matches (<c>-m</c>) are not. No I/O here.
/// </summary>
public static class XtTablesParser
{
    /// <summary>sizeof(struct ipt_getinfo): name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size.</summary>
    public const int InfoLength = 84;

    /// <summary>sizeof(struct ipt_get_entries) and ip6t_get_entries: name[32], size, padding to the entries' 8-byte alignment.</summary>
    public const int GetEntriesHeaderLength = 40;

    private const int TargetHeaderLength = 32;
    private static readonly string[] HookChains = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

    /// <summary>The layout of one family's entry (struct ipt_entry: 112 bytes; struct ip6t_entry: 168).</summary>
    private sealed record Layout(int EntryLength, int Proto, int Flags, int Invflags, int OutIface, int OutIfaceMask, int TargetOffset, string Tool)
    {
        public static readonly Layout IPv4 = new(112, 80, -1, 83, 32, 64, 88, "iptables-legacy");

        // ip6t_ip6: proto at 128, tos 130, flags 131 (IP6T_F_PROTO 0x01 says the protocol is checked), invflags 132.
        public static readonly Layout IPv6 = new(168, 128, 131, 132, 80, 112, 140, "ip6tables-legacy");
    }

    /// <summary>The entries' total size that IPT_SO_GET_INFO reports: what to ask IPT_SO_GET_ENTRIES for.</summary>
    public static int EntriesSize(ReadOnlySpan<byte> info, NatFamily family)
    {
        if (info.Length < InfoLength)
        {
            throw new CheckException($"{Of(family).Tool} nat: {info.Length} bytes of struct ipt_getinfo, expected {InfoLength}");
        }

        var size = BinaryPrimitives.ReadUInt32LittleEndian(info[80..]);
        return size <= 256 * 1024 * 1024 ? (int)size : throw new CheckException($"{Of(family).Tool} nat: a table of {size} bytes");
    }

    /// <summary>The SNAT and MASQUERADE rules of the table <paramref name="info"/> describes and <paramref name="entries"/> holds.</summary>
    public static List<NatRule> Parse(ReadOnlySpan<byte> info, ReadOnlySpan<byte> entries, NatFamily family)
    {
        var layout = Of(family);
        var size = EntriesSize(info, family);
        var where = $"{layout.Tool} nat";
        if (entries.Length != size)
        {
            throw new CheckException($"{where}: {entries.Length} bytes of entries, the table has {size}");
        }

        var validHooks = BinaryPrimitives.ReadUInt32LittleEndian(info[32..]);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(info[76..]);
        var rules = new List<NatRule>();
        var userChain = (string?)null;
        var offset = 0;
        for (var n = 0; offset < entries.Length; n++)
        {
            var at = $"{where}: entry {n} at offset {offset}";
            if (n >= count)
            {
                throw new CheckException($"{at}: more entries than the {count} the table has");
            }

            if (entries.Length - offset < layout.EntryLength + TargetHeaderLength)
            {
                throw new CheckException($"{at}: {entries.Length - offset} bytes left, less than an entry and its target");
            }

            var entry = entries[offset..];
            var targetOffset = BinaryPrimitives.ReadUInt16LittleEndian(entry[layout.TargetOffset..]);
            var nextOffset = BinaryPrimitives.ReadUInt16LittleEndian(entry[(layout.TargetOffset + 2)..]);
            // As xt_check_entry_offsets() and check_entry_size_and_hooks() hold them: the target after the
            // entry and inside it, entries 8-aligned; a next_offset of 0 would walk one entry for ever.
            if (targetOffset < layout.EntryLength || targetOffset + TargetHeaderLength > nextOffset || nextOffset > entry.Length || nextOffset % 8 != 0)
            {
                throw new CheckException($"{at}: target_offset {targetOffset}, next_offset {nextOffset}, {entry.Length} bytes left");
            }

            var target = entry[targetOffset..nextOffset];
            var targetSize = BinaryPrimitives.ReadUInt16LittleEndian(target);
            if (targetSize < TargetHeaderLength || targetSize > target.Length)
            {
                throw new CheckException($"{at}: target of {targetSize} bytes in {target.Length}");
            }

            var nameBytes = target.Slice(2, 29);
            var end = nameBytes.IndexOf((byte)0);
            var name = Acquisition.ProcFs.Excerpt.Escape(end >= 0 ? nameBytes[..end] : nameBytes);
            var data = target[TargetHeaderLength..targetSize];
            if (name == "ERROR")
            {
                // A user chain opens with an ERROR target whose data is its name; the table ends with one named "ERROR".
                var nameEnd = data.IndexOf((byte)0);
                userChain = Acquisition.ProcFs.Excerpt.Escape(nameEnd >= 0 ? data[..nameEnd] : data);
            }
            else if (XtNatTarget.IsSourceNat(name))
            {
                var chain = BuiltinChain(info, validHooks, offset) ?? userChain ?? "?";
                rules.Add(XtNatTarget.Parse(name, target[31], family, data, Protocol(entry, layout), OutputInterface(entry, layout), $"{layout.Tool} nat {chain}"));
            }

            offset += nextOffset;
        }

        return rules;
    }

    private static Layout Of(NatFamily family) => family switch
    {
        NatFamily.IPv4 => Layout.IPv4,
        NatFamily.IPv6 => Layout.IPv6,
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "a legacy table is IPv4 or IPv6"),
    };

    private static string? BuiltinChain(ReadOnlySpan<byte> info, uint validHooks, int offset)
    {
        for (var hook = 0; hook < HookChains.Length; hook++)
        {
            var first = BinaryPrimitives.ReadUInt32LittleEndian(info[(36 + (hook * 4))..]);
            var underflow = BinaryPrimitives.ReadUInt32LittleEndian(info[(56 + (hook * 4))..]);
            if ((validHooks & (1u << hook)) != 0 && offset >= first && offset <= underflow)
            {
                return HookChains[hook];
            }
        }

        return null;
    }

    private static int? Protocol(ReadOnlySpan<byte> entry, Layout layout)
    {
        var proto = BinaryPrimitives.ReadUInt16LittleEndian(entry[layout.Proto..]);
        var inverted = (entry[layout.Invflags] & 0x40) != 0; // XT_INV_PROTO
        var checkedAtAll = layout.Flags < 0 || (entry[layout.Flags] & 0x01) != 0; // IP6T_F_PROTO
        return proto != 0 && !inverted && checkedAtAll ? proto : null;
    }

    private static string? OutputInterface(ReadOnlySpan<byte> entry, Layout layout)
    {
        var name = entry.Slice(layout.OutIface, 16);
        var mask = entry.Slice(layout.OutIfaceMask, 16);
        var length = name.IndexOf((byte)0) is var e and >= 0 ? e : 16;
        if (length == 0)
        {
            return null;
        }

        // The mask says how many bytes ip_packet_match() compares: "-o eth+" keeps "eth+" as the
        // name and masks only "eth" (a prefix); "-o lo" masks "lo" and its NUL (exact).
        var compared = mask.IndexOf((byte)0) is var m and >= 0 ? m : 16;
        var text = compared > length ? Acquisition.ProcFs.Excerpt.Escape(name[..length]) : Acquisition.ProcFs.Excerpt.Escape(name[..compared]) + "*";
        return (entry[layout.Invflags] & 0x02) != 0 ? "!" + text : text; // IPT_INV_VIA_OUT
    }
}
