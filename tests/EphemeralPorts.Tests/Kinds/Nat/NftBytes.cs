using System.Buffers.Binary;
using System.Text;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>Builds nf_tables netlink messages by hand for the cases no capture holds (the numbers of nf_tables.h).</summary>
internal static class NftBytes
{
    public static byte[] Attr(int type, byte[] value)
    {
        var length = 4 + value.Length;
        var bytes = new byte[(length + 3) & ~3];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)type);
        value.CopyTo(bytes, 4);
        return bytes;
    }

    public static byte[] Nest(int type, params byte[][] attributes) => Attr(type | 0x8000, [.. attributes.SelectMany(a => a)]);

    public static byte[] U32(int type, uint value)
    {
        var v = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, value);
        return Attr(type, v);
    }

    public static byte[] Str(int type, string value) => Attr(type, [.. Encoding.ASCII.GetBytes(value), 0]);

    public static byte[] Expr(string name, params byte[][] data) => Nest(1, Str(1, name), Nest(2, data));

    public static byte[] Immediate(uint register, byte[] value) => Expr("immediate", U32(1, register), Nest(2, Attr(1, value)));

    public static byte[] Port(int port) => [(byte)(port >> 8), (byte)port];

    public static byte[] Message(int type, ushort flags, byte family, params byte[][] attributes)
    {
        var body = attributes.SelectMany(a => a).ToArray();
        var bytes = new byte[16 + 4 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)bytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), (ushort)type);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), flags);
        bytes[16] = family;
        body.CopyTo(bytes, 20);
        return bytes;
    }

    /// <summary>One NFT_MSG_NEWRULE of table t chain c with these expressions.</summary>
    public static byte[] Rule(byte family, params byte[][] expressions) =>
        Message((10 << 8) | 6, 0x2, family, Str(1, "t"), Str(2, "c"), Nest(4, expressions));

    public static byte[] Done() => Message(3, 0x2, 0);

    public static byte[] Error(int errno)
    {
        var bytes = Message(2, 0, 0);
        var withError = new byte[bytes.Length + 16];
        bytes.CopyTo(withError, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(withError, (uint)withError.Length);
        BinaryPrimitives.WriteInt32LittleEndian(withError.AsSpan(16), -errno);
        return withError;
    }

    public static byte[] Dump(params byte[][] messages) => [.. messages.SelectMany(m => m), .. Done()];
}
