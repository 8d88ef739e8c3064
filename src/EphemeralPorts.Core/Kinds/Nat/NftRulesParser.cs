using System.Buffers.Binary;
using System.Globalization;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// Reads the replies to an nf_tables rule dump (NFT_MSG_GETRULE | NLM_F_DUMP) into the source-NAT
/// rules they hold. No I/O: feed it the received buffers in order. It follows what the kernel
/// dumps (nf_tables_fill_rule_info() in net/netfilter/nf_tables_api.c, each expression's
/// <c>dump</c>): a rule is NFTA_RULE_TABLE, NFTA_RULE_CHAIN and NFTA_RULE_EXPRESSIONS, a list of
/// NFTA_LIST_ELEM each holding NFTA_EXPR_NAME and NFTA_EXPR_DATA; the numbers of
/// include/uapi/linux/netfilter/nf_tables.h and nf_tables_compat.h; every u32 big-endian.
/// <para>
/// It runs the rule's expressions over a model of the registers (32-bit words, as
/// nft_parse_register() maps NFT_REG_1..4 and NFT_REG32_00..15): <c>immediate</c> loads data,
/// <c>meta</c> and <c>payload</c> load what <c>cmp</c> may then compare, and <c>nat</c> (NFT_NAT_SNAT)
/// and <c>masq</c> read their address and port registers (nft_nat_eval(): a port is the first two
/// bytes of its register, big-endian). iptables-nft's xtables <c>target</c> SNAT/MASQUERADE carries
/// the iptables struct (<see cref="XtNatTarget"/>). Read as matches: <c>meta l4proto</c>, <c>ip protocol</c>,
/// <c>ip6 nexthdr</c>, <c>meta nfproto</c>, <c>oifname</c> and <c>oif</c> compared for equality.
/// Not read: sets and maps (a protocol set leaves the protocol "any"; an address or port from a
/// map makes the rule's range unreadable), negations, the chain's hook and type (the kernel
/// accepts snat and masq only in nat chains at postrouting or input: nft_nat_validate()), and
/// DNAT. An expression not modelled clears the register model, so a value it may have loaded is
/// never taken for an immediate.
/// </para>
/// </summary>
public sealed class NftRulesParser
{
    public const int NetlinkNetfilter = 12;
    public const byte SubsysNftables = 10;
    public const byte MsgNewRule = 6;
    public const byte MsgGetRule = 7;
    public const ushort NlmsgError = 2;
    public const ushort NlmsgDone = 3;
    private const ushort NlmFDumpIntr = 0x10;
    private const int NlmsgHeaderLength = 16;
    private const int NfgenmsgLength = 4;

    private const byte NfprotoInet = 1;
    private const byte NfprotoIpv4 = 2;
    private const byte NfprotoIpv6 = 10;

    private readonly List<NatRule> _rules = [];
    private int _messages;
    private long _offset;

    /// <summary>The source-NAT rules read so far.</summary>
    public IReadOnlyList<NatRule> Rules => _rules;

    /// <summary>The dump ended (NLMSG_DONE, or NLMSG_ERROR).</summary>
    public bool Done { get; private set; }

    /// <summary>The kernel's errno when the dump ended with NLMSG_ERROR; 0 otherwise.</summary>
    public int Error { get; private set; }

    /// <summary>A message carried NLM_F_DUMP_INTR: the ruleset changed during the dump, read it again.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>The request: nlmsghdr and nfgenmsg (family NFPROTO_UNSPEC: every table of every family).</summary>
    public static byte[] DumpRequest(uint sequence)
    {
        var message = new byte[NlmsgHeaderLength + NfgenmsgLength];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), (ushort)((SubsysNftables << 8) | MsgGetRule));
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), 0x1 | 0x300); // NLM_F_REQUEST | NLM_F_DUMP
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), sequence);
        return message;
    }

    /// <summary>Parses a whole dump (the received buffers one after the other, as the capture stores them).</summary>
    public static NftRulesParser ParseAll(ReadOnlySpan<byte> dump)
    {
        var parser = new NftRulesParser();
        parser.Feed(dump);
        if (!parser.Done)
        {
            throw new CheckException($"nft rule dump: ends after {dump.Length} bytes without NLMSG_DONE");
        }

        return parser;
    }

    /// <summary>Reads the netlink messages of one received buffer; bytes after the end of the dump are ignored.</summary>
    public void Feed(ReadOnlySpan<byte> buffer)
    {
        while (!Done && buffer.Length > 0)
        {
            if (buffer.Length < NlmsgHeaderLength)
            {
                throw new CheckException($"nft rule dump: {buffer.Length} bytes at offset {_offset}, less than a netlink header");
            }

            var length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(buffer), int.MaxValue);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(buffer[6..]);
            if (length < NlmsgHeaderLength || length > buffer.Length)
            {
                throw new CheckException($"nft rule dump: netlink message of {length} bytes at offset {_offset}, {buffer.Length} left");
            }

            Interrupted |= (flags & NlmFDumpIntr) != 0;
            var payload = buffer[NlmsgHeaderLength..length];
            _messages++;
            if (type == NlmsgDone)
            {
                Done = true;
            }
            else if (type == NlmsgError)
            {
                Error = payload.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(payload) : 0;
                Done = true;
            }
            else if (type == ((SubsysNftables << 8) | MsgNewRule))
            {
                Rule(payload);
            }

            var aligned = Math.Min((length + 3) & ~3, buffer.Length);
            _offset += aligned;
            buffer = buffer[aligned..];
        }
    }

    private void Rule(ReadOnlySpan<byte> payload)
    {
        var where = new Place(_messages);
        if (payload.Length < NfgenmsgLength)
        {
            throw new CheckException($"{where}: {payload.Length} bytes, less than struct nfgenmsg");
        }

        var family = payload[0];
        ReadOnlySpan<byte> expressions = default, table = default, chain = default;
        var hasExpressions = false;
        foreach (var (type, value) in new Attributes(payload[NfgenmsgLength..], where))
        {
            switch (type)
            {
                case 1: table = value; break; // NFTA_RULE_TABLE
                case 2: chain = value; break; // NFTA_RULE_CHAIN
                case 4: expressions = value; hasExpressions = true; break; // NFTA_RULE_EXPRESSIONS
            }
        }

        // Only the families with nat chains (nf_tables' nat chain types: ip, ip6, inet), and only
        // rules with a source-NAT statement are walked in full: most rules of a large ruleset
        // (a Kubernetes node's tens of thousands) are DNAT, jumps and filters.
        if (!hasExpressions || family is not (NfprotoInet or NfprotoIpv4 or NfprotoIpv6) || !HasSourceNat(expressions, where))
        {
            return;
        }

        where.Table = Text(table);
        where.Chain = Text(chain);
        where.Family = family switch { NfprotoIpv4 => "ip", NfprotoIpv6 => "ip6", _ => "inet" };
        new RuleState(this, family, where).Run(expressions);
    }

    /// <summary>Whether a rule holds a nat expression of type SNAT, a masq, or an xtables SNAT or MASQUERADE target.</summary>
    private static bool HasSourceNat(ReadOnlySpan<byte> expressions, Place where)
    {
        foreach (var (type, element) in new Attributes(expressions, where))
        {
            if (type != 1)
            {
                continue;
            }

            var kind = Kind.Other;
            var named = false;
            var data = ReadOnlySpan<byte>.Empty;
            foreach (var (t, v) in new Attributes(element, where))
            {
                if (t == 1)
                {
                    kind = KindOf(v);
                    named = true;
                }
                else if (t == 2)
                {
                    data = v;
                }
            }

            // Every rule's expressions are held to their framing, NAT or not: a truncated one is refused.
            if (!named)
            {
                throw new CheckException($"{where}: an expression without NFTA_EXPR_NAME");
            }

            foreach (var _ in new Attributes(data, where))
            {
            }

            switch (kind)
            {
                case Kind.Masq:
                    return true;
                case Kind.Nat or Kind.Target:
                    foreach (var (t, v) in new Attributes(data, where))
                    {
                        // NFTA_NAT_TYPE NFT_NAT_SNAT (0); NFTA_TARGET_NAME SNAT or MASQUERADE.
                        if (t == 1 && (kind == Kind.Nat ? v.SequenceEqual(SnatType) : v.StartsWith("SNAT\0"u8) || v.StartsWith("MASQUERADE\0"u8)))
                        {
                            return true;
                        }
                    }

                    break;
            }
        }

        return false;
    }

    private static ReadOnlySpan<byte> SnatType => [0, 0, 0, 0];

    /// <summary>The expressions the register model knows, by their NFTA_EXPR_NAME.</summary>
    private enum Kind
    {
        Other,
        Immediate,
        Meta,
        Payload,
        Cmp,
        Nat,
        Masq,
        Target,

        /// <summary>Statements that load no register: counter, log, limit, quota, and xtables matches (they run on the packet).</summary>
        LoadsNothing,
    }

    private static Kind KindOf(ReadOnlySpan<byte> name)
    {
        var end = name.IndexOf((byte)0);
        name = end >= 0 ? name[..end] : name;
        return name switch
        {
            _ when name.SequenceEqual("immediate"u8) => Kind.Immediate,
            _ when name.SequenceEqual("meta"u8) => Kind.Meta,
            _ when name.SequenceEqual("payload"u8) => Kind.Payload,
            _ when name.SequenceEqual("cmp"u8) => Kind.Cmp,
            _ when name.SequenceEqual("nat"u8) => Kind.Nat,
            _ when name.SequenceEqual("masq"u8) => Kind.Masq,
            _ when name.SequenceEqual("target"u8) => Kind.Target,
            _ when name.SequenceEqual("counter"u8) || name.SequenceEqual("log"u8) || name.SequenceEqual("limit"u8)
                || name.SequenceEqual("quota"u8) || name.SequenceEqual("match"u8) => Kind.LoadsNothing,
            _ => Kind.Other,
        };
    }

    /// <summary>
    /// Where the parser is, for a message: built into text only when something is refused or a
    /// rule is kept (a Kubernetes node's ruleset has tens of thousands of rules, few of them NAT).
    /// </summary>
    private sealed class Place(int message)
    {
        private string? _origin;

        public string? Table { get; set; }

        public string? Chain { get; set; }

        public string? Family { get; set; }

        public int Expression { get; set; }

        public string? ExpressionName { get; set; }

        public string Origin => _origin ??= $"nft table {Family ?? "?"} {Table ?? "?"} chain {Chain ?? "?"}";

        public override string ToString() =>
            $"nft rule dump: message {message}"
            + (Family is null ? string.Empty : $" ({Origin})")
            + (Expression == 0 ? string.Empty : $": expression {Expression}")
            + (ExpressionName is null ? string.Empty : $" ({ExpressionName})");
    }

    private static string Text(ReadOnlySpan<byte> value)
    {
        var end = value.IndexOf((byte)0);
        return Acquisition.ProcFs.Excerpt.Escape(end >= 0 ? value[..end] : value);
    }

    private static uint U32(ReadOnlySpan<byte> value, Place where, string what) =>
        value.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(value) : throw new CheckException($"{where}: {what} of {value.Length} bytes, expected 4");

    /// <summary>What a register word holds, as far as the matches read need it.</summary>
    private enum Loaded : byte
    {
        Nothing,
        Immediate,
        MetaL4proto,
        MetaNfproto,
        MetaOifname,
        MetaOif,
        NetworkByte9,
        NetworkByte6,
    }

    /// <summary>One rule's walk over its expressions.</summary>
    private sealed class RuleState(NftRulesParser parser, byte tableFamily, Place where)
    {
        /// <summary>NFT_REG32_NUM: 20 words of 4 bytes; words 0-3 are the verdict register.</summary>
        private const int Words = 20;

        private readonly byte[] _data = new byte[Words * 4];
        private readonly Loaded[] _loaded = new Loaded[Words];
        private readonly byte _tableFamily = tableFamily;
        private byte _family = tableFamily;
        private int? _protocol;
        private string? _oif;

        public void Run(ReadOnlySpan<byte> expressions)
        {
            var index = 0;
            foreach (var (type, element) in new Attributes(expressions, where))
            {
                index++;
                if (type != 1) // NFTA_LIST_ELEM
                {
                    continue;
                }

                where.Expression = index;
                where.ExpressionName = null;
                var kind = Kind.Other;
                var named = false;
                var data = ReadOnlySpan<byte>.Empty;
                foreach (var (t, v) in new Attributes(element, where))
                {
                    if (t == 1)
                    {
                        kind = KindOf(v); // NFTA_EXPR_NAME
                        named = true;
                        where.ExpressionName = Text(v);
                    }
                    else if (t == 2)
                    {
                        data = v; // NFTA_EXPR_DATA
                    }
                }

                if (!named)
                {
                    throw new CheckException($"{where}: an expression without NFTA_EXPR_NAME");
                }

                Expression(kind, data, where);
            }
        }

        private void Expression(Kind kind, ReadOnlySpan<byte> data, Place at)
        {
            switch (kind)
            {
                case Kind.Immediate: Immediate(data, at); break;
                case Kind.Meta: Meta(data, at); break;
                case Kind.Payload: Payload(data, at); break;
                case Kind.Cmp: Cmp(data, at); break;
                case Kind.Nat: Nat(data, at); break;
                case Kind.Masq: Masq(data, at); break;
                case Kind.Target: Target(data, at); break;
                case Kind.LoadsNothing:
                    // Their data is still walked: a truncated one is refused like any other.
                    foreach (var _ in new Attributes(data, at))
                    {
                    }

                    break;
                default:
                    foreach (var _ in new Attributes(data, at))
                    {
                    }

                    Array.Clear(_loaded);
                    break;
            }
        }

        /// <summary>nft_parse_register(): NFT_REG_1..4 are 16-byte registers, NFT_REG32_00.. single words.</summary>
        private static int Word(uint register, Place at) => register switch
        {
            <= 4 => (int)register * 4,
            >= 8 and < 8 + 16 => (int)register - 8 + 4,
            _ => throw new CheckException($"{at}: register {register} does not exist"),
        };

        private int Store(uint register, int length, Loaded what, Place at)
        {
            var word = Word(register, at);
            var words = (length + 3) / 4;
            if (length < 1 || word + words > Words)
            {
                throw new CheckException($"{at}: {length} bytes do not fit register {register}");
            }

            _loaded.AsSpan(word, words).Fill(what);
            return word;
        }

        private void Immediate(ReadOnlySpan<byte> data, Place at)
        {
            uint? register = null;
            var value = ReadOnlySpan<byte>.Empty;
            var isValue = false;
            foreach (var (t, v) in new Attributes(data, at))
            {
                if (t == 1)
                {
                    register = U32(v, at, "NFTA_IMMEDIATE_DREG");
                }
                else if (t == 2)
                {
                    foreach (var (dt, dv) in new Attributes(v, at))
                    {
                        if (dt == 1) // NFTA_DATA_VALUE (NFTA_DATA_VERDICT is a verdict: no data register)
                        {
                            value = dv;
                            isValue = true;
                        }
                    }
                }
            }

            if (register is not { } r || r == 0 || !isValue)
            {
                return;
            }

            var word = Store(r, value.Length, Loaded.Immediate, at);
            _data.AsSpan(word * 4, (value.Length + 3) / 4 * 4).Clear();
            value.CopyTo(_data.AsSpan(word * 4));
        }

        private void Meta(ReadOnlySpan<byte> data, Place at)
        {
            uint? key = null, register = null;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: register = U32(v, at, "NFTA_META_DREG"); break;
                    case 2: key = U32(v, at, "NFTA_META_KEY"); break;
                }
            }

            if (register is not { } r)
            {
                return; // meta set: writes the packet, not a register
            }

            // enum nft_meta_keys: OIF 5, OIFNAME 7, NFPROTO 15, L4PROTO 16.
            var (what, length) = key switch
            {
                5 => (Loaded.MetaOif, 4),
                7 => (Loaded.MetaOifname, 16),
                15 => (Loaded.MetaNfproto, 1),
                16 => (Loaded.MetaL4proto, 1),
                _ => (Loaded.Nothing, 4),
            };
            Store(r, length, what, at);
        }

        private void Payload(ReadOnlySpan<byte> data, Place at)
        {
            uint? register = null, b = null, offset = null, length = null;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: register = U32(v, at, "NFTA_PAYLOAD_DREG"); break;
                    case 2: b = U32(v, at, "NFTA_PAYLOAD_BASE"); break;
                    case 3: offset = U32(v, at, "NFTA_PAYLOAD_OFFSET"); break;
                    case 4: length = U32(v, at, "NFTA_PAYLOAD_LEN"); break;
                }
            }

            if (register is not { } r)
            {
                return; // a payload write (NFTA_PAYLOAD_SREG): no register loaded
            }

            // NFT_PAYLOAD_NETWORK_HEADER 1: byte 9 of IPv4 is the protocol, byte 6 of IPv6 the next header.
            var what = (b, offset, length) switch
            {
                (1, 9, 1) => Loaded.NetworkByte9,
                (1, 6, 1) => Loaded.NetworkByte6,
                _ => Loaded.Nothing,
            };
            Store(r, (int)Math.Clamp(length ?? 4, 1, 64), what, at);
        }

        private void Cmp(ReadOnlySpan<byte> data, Place at)
        {
            uint? register = null, op = null;
            var value = ReadOnlySpan<byte>.Empty;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: register = U32(v, at, "NFTA_CMP_SREG"); break;
                    case 2: op = U32(v, at, "NFTA_CMP_OP"); break;
                    case 3:
                        foreach (var (dt, dv) in new Attributes(v, at))
                        {
                            if (dt == 1)
                            {
                                value = dv;
                            }
                        }

                        break;
                }
            }

            if (register is not { } r || value.IsEmpty)
            {
                return;
            }

            var loaded = _loaded[Word(r, at)];
            var negated = op == 1; // NFT_CMP_NEQ
            if (op is not (0 or 1))
            {
                return; // <, >, ...: a range of values, not read
            }

            switch (loaded)
            {
                case Loaded.MetaL4proto when !negated:
                case Loaded.NetworkByte9 when !negated && _family == NfprotoIpv4:
                case Loaded.NetworkByte6 when !negated && _family == NfprotoIpv6:
                    _protocol = value[0];
                    break;
                case Loaded.MetaNfproto when !negated && value[0] is NfprotoIpv4 or NfprotoIpv6:
                    _family = value[0];
                    break;
                case Loaded.MetaOifname:
                    // nft compares the name with its NUL for an exact match, without it for a prefix (eth*).
                    var end = value.IndexOf((byte)0);
                    var name = Acquisition.ProcFs.Excerpt.Escape(end >= 0 ? value[..end] : value) + (end >= 0 ? string.Empty : "*");
                    _oif = negated ? "!" + name : name;
                    break;
                case Loaded.MetaOif when value.Length == 4:
                    var index = "ifindex " + BinaryPrimitives.ReadUInt32LittleEndian(value).ToString(CultureInfo.InvariantCulture);
                    _oif = negated ? "!" + index : index;
                    break;
            }
        }

        private NatFamily Family => _family switch { NfprotoIpv4 => NatFamily.IPv4, NfprotoIpv6 => NatFamily.IPv6, _ => NatFamily.Any };

        /// <summary>The value of an immediate in <paramref name="register"/>, or null when something else loaded it.</summary>
        private ReadOnlySpan<byte> Read(uint register, int length, Place at, out bool immediate)
        {
            var word = Word(register, at);
            var words = (length + 3) / 4;
            if (word + words > Words)
            {
                throw new CheckException($"{at}: {length} bytes do not fit register {register}");
            }

            immediate = true;
            for (var i = 0; i < words; i++)
            {
                immediate &= _loaded[word + i] == Loaded.Immediate;
            }

            return _data.AsSpan(word * 4, length);
        }

        private void Nat(ReadOnlySpan<byte> data, Place at)
        {
            uint? natType = null, natFamily = null, addrMin = null, addrMax = null, protoMin = null, protoMax = null;
            uint flags = 0;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: natType = U32(v, at, "NFTA_NAT_TYPE"); break;
                    case 2: natFamily = U32(v, at, "NFTA_NAT_FAMILY"); break;
                    case 3: addrMin = U32(v, at, "NFTA_NAT_REG_ADDR_MIN"); break;
                    case 4: addrMax = U32(v, at, "NFTA_NAT_REG_ADDR_MAX"); break;
                    case 5: protoMin = U32(v, at, "NFTA_NAT_REG_PROTO_MIN"); break;
                    case 6: protoMax = U32(v, at, "NFTA_NAT_REG_PROTO_MAX"); break;
                    case 7: flags = U32(v, at, "NFTA_NAT_FLAGS"); break;
                }
            }

            if (natType != 0) // NFT_NAT_SNAT; DNAT rewrites the destination
            {
                return;
            }

            if (natFamily is NfprotoIpv4 or NfprotoIpv6)
            {
                _family = (byte)natFamily;
            }

            string? unreadable = null;
            NatAddressRange? addresses = null;
            if (addrMin is { } amin)
            {
                // nft_nat_init(): without NFTA_NAT_REG_ADDR_MAX the maximum is the minimum's register.
                var length = _family == NfprotoIpv6 ? 16 : 4;
                var low = CtAddress.FromBytes(Read(amin, length, at, out var lowKnown));
                var high = CtAddress.FromBytes(Read(addrMax ?? amin, length, at, out var highKnown));
                if (lowKnown && highKnown)
                {
                    addresses = NatAddressRange.From(low, high);
                }
            }

            var ports = Ports(protoMin, protoMax, at, ref unreadable);
            parser._rules.Add(new NatRule(Family, NatRuleKind.Snat, addresses, ports, NatRule.FlagsFrom(flags), _protocol, _oif, where.Origin) { Unreadable = unreadable });
        }

        private NatPortRange? Ports(uint? min, uint? max, Place at, ref string? unreadable)
        {
            if (min is not { } pmin)
            {
                return null;
            }

            var low = BinaryPrimitives.ReadUInt16BigEndian(Read(pmin, 2, at, out var lowKnown));
            var high = BinaryPrimitives.ReadUInt16BigEndian(Read(max ?? pmin, 2, at, out var highKnown));
            if (!lowKnown || !highKnown)
            {
                unreadable = "the ports come from an expression (a map), not from the rule";
                return null;
            }

            return new NatPortRange(low, high); // nf_nat_l4proto_unique_tuple() takes them in either order
        }

        private void Masq(ReadOnlySpan<byte> data, Place at)
        {
            uint? protoMin = null, protoMax = null;
            uint flags = 0;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: flags = U32(v, at, "NFTA_MASQ_FLAGS"); break;
                    case 2: protoMin = U32(v, at, "NFTA_MASQ_REG_PROTO_MIN"); break;
                    case 3: protoMax = U32(v, at, "NFTA_MASQ_REG_PROTO_MAX"); break;
                }
            }

            string? unreadable = null;
            var ports = Ports(protoMin, protoMax, at, ref unreadable);
            parser._rules.Add(new NatRule(Family, NatRuleKind.Masquerade, null, ports, NatRule.FlagsFrom(flags), _protocol, _oif, where.Origin) { Unreadable = unreadable });
        }

        private void Target(ReadOnlySpan<byte> data, Place at)
        {
            string? name = null;
            uint? revision = null;
            var info = ReadOnlySpan<byte>.Empty;
            foreach (var (t, v) in new Attributes(data, at))
            {
                switch (t)
                {
                    case 1: name = Text(v); break;
                    case 2: revision = U32(v, at, "NFTA_TARGET_REV"); break;
                    case 3: info = v; break;
                }
            }

            if (name is null || !XtNatTarget.IsSourceNat(name))
            {
                return;
            }

            if (revision is not { } rev || rev > 255)
            {
                throw new CheckException($"{at}: target {name} without a revision");
            }

            // nft_target_init(): the xt target runs with the table's family (iptables-nft: ip or ip6).
            var family = _tableFamily switch { NfprotoIpv4 => NatFamily.IPv4, NfprotoIpv6 => NatFamily.IPv6, _ => NatFamily.Any };
            if (family == NatFamily.Any)
            {
                parser._rules.Add(new NatRule(family, name == "SNAT" ? NatRuleKind.Snat : NatRuleKind.Masquerade, null, null, NatRangeFlags.None, _protocol, _oif, where.Origin)
                {
                    Unreadable = $"an xtables {name} target in an inet table: its layout depends on the packet's family",
                });
                return;
            }

            parser._rules.Add(XtNatTarget.Parse(name, (int)rev, family, info, _protocol, _oif, where.Origin));
        }
    }

    /// <summary>
    /// The netlink attributes of a span (struct nlattr: u16 length with its header, u16 type whose
    /// top two bits are NLA_F_NESTED and NLA_F_NET_BYTEORDER), each padded to 4 bytes. A length
    /// below the header or beyond the span is refused (the kernel's nla_ok()).
    /// </summary>
    private ref struct Attributes(ReadOnlySpan<byte> span, Place where)
    {
        private ReadOnlySpan<byte> _rest = span;

        public Attribute Current { get; private set; }

        public readonly Attributes GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_rest.IsEmpty)
            {
                return false;
            }

            if (_rest.Length < 4)
            {
                throw new CheckException($"{where}: {_rest.Length} stray bytes after the last attribute");
            }

            var length = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & 0x3FFF;
            if (length < 4 || length > _rest.Length)
            {
                throw new CheckException($"{where}: attribute {type} of {length} bytes, {_rest.Length} left");
            }

            Current = new Attribute(type, _rest[4..length]);
            _rest = _rest[Math.Min((length + 3) & ~3, _rest.Length)..];
            return true;
        }
    }

    /// <summary>One netlink attribute: its type (without the flag bits) and its payload.</summary>
    private readonly ref struct Attribute(int type, ReadOnlySpan<byte> value)
    {
        private readonly ReadOnlySpan<byte> _value = value;

        public void Deconstruct(out int t, out ReadOnlySpan<byte> v)
        {
            t = type;
            v = _value;
        }
    }
}
