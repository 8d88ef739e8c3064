using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using EphemeralPorts.Acquisition.Bpf;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Acquisition.Bpf;

/// <summary>
/// The numbers shared with the native reader are defined once, in src/native/cep_abi.h; the C#
/// side compiles the file src/native/abi_cs.sh makes from it. These hold the compiled constants
/// to the header as it is now (a C constant changed without the C# file following fails here, and
/// src/native/build.sh fails too), read by a parser of their own rather than the generator's.
/// </summary>
public partial class BpfAbiTests
{
    private static readonly Dictionary<string, string> Groups = new(StringComparer.Ordinal)
    {
        ["RECORD"] = "Record", ["OFF"] = "Off", ["FLAG"] = "Flag", ["USERLOCK"] = "UserLock",
        ["ITER"] = "Iter", ["OPEN"] = "Open", ["MODE"] = "Mode",
    };

    private static string Header => File.ReadAllText(Path.Combine(Repo.Root, "src", "native", "cep_abi.h"));

    [Fact]
    public void Every_constant_of_the_header_is_compiled_into_CepAbi_with_its_value_and_no_other()
    {
        var defined = Parse(Header);
        defined.Count.ShouldBeGreaterThan(40, "the header's constants were found");
        defined.ShouldContainKeyAndValue("Record.Size", 68);
        Drift(defined).ShouldBeEmpty();
    }

    [Fact]
    public void A_constant_changed_in_the_header_alone_is_caught()
    {
        // The check above must bite: the same header with one value moved, one constant added.
        var moved = Parse(Header.Replace("#define CEP_OFF_LPORT 6", "#define CEP_OFF_LPORT 7", StringComparison.Ordinal)
            + "\n#define CEP_MODE_SOMETHING_NEW 9\n");
        Drift(moved).ShouldBe(["Off.Lport: the header says 7, CepAbi 6", "Mode.SomethingNew: in the header, not in CepAbi"], ignoreOrder: true);
    }

    [Fact]
    [Trait(Tier.Key, Tier.Full)]
    public void The_committed_CSharp_file_is_what_abi_cs_sh_makes_of_the_header()
    {
        var check = Process.Start(new ProcessStartInfo("bash", [Path.Combine(Repo.Root, "src", "native", "abi_cs.sh"), "--check"]) { RedirectStandardError = true })!;
        var said = check.StandardError.ReadToEnd();
        check.WaitForExit();
        check.ExitCode.ShouldBe(0, said);
    }

    [Fact]
    public void The_record_parser_reads_each_field_where_the_documented_layout_puts_it()
    {
        // src/native/README.md's table, written out here by hand on purpose: a TIME_WAIT IPv4
        // socket 10.0.0.1:40001 -> 10.0.0.2:443, bind bucket of connect(), timestamps, range set.
        var r = new byte[68];
        r[0] = 2;
        r[1] = 6;
        r[2] = 6;
        r[3] = 0x40 | 0x08;
        r[4] = 0xff;
        r[5] = 0xff;
        BitConverter.TryWriteBytes(r.AsSpan(6), (ushort)40001).ShouldBeTrue();
        BitConverter.TryWriteBytes(r.AsSpan(8), (ushort)443).ShouldBeTrue();
        BitConverter.TryWriteBytes(r.AsSpan(10), (ushort)40000).ShouldBeTrue();
        BitConverter.TryWriteBytes(r.AsSpan(12), (ushort)40999).ShouldBeTrue();
        BitConverter.TryWriteBytes(r.AsSpan(16), 1234u).ShouldBeTrue();
        BitConverter.TryWriteBytes(r.AsSpan(20), 77u).ShouldBeTrue();
        r[28] = 10;
        r[31] = 1;
        r[44] = 10;
        r[47] = 2;
        BitConverter.TryWriteBytes(r.AsSpan(64), 3u).ShouldBeTrue();

        var e = BpfRecords.Entry(r);
        e.LocalPort.ShouldBe(40001);
        e.RemotePort.ShouldBe(443);
        e.State.ShouldBe((byte)6);
        e.Inode.ShouldBe(77);
        e.LocalAddress.ToString().ShouldBe("10.0.0.1");
        e.RemoteAddress.ToString().ShouldBe("10.0.0.2");
        e.Origin.ShouldBe(EphemeralPorts.Model.PortOrigin.Connect);
        e.NegotiatedTimestamps.ShouldBe(true);
        e.TimeWaitAgeMs.ShouldBe(1234);
        e.OwnRange.ShouldBe(new EphemeralPorts.Model.PortRange(40000, 40999));
        e.V6Only.ShouldBeTrue();
        e.BoundDevice.ShouldBe(3);
    }

    // "Group.Name" -> value, for every #define CEP_<GROUP>_<NAME> <integer> of the header.
    private static Dictionary<string, long> Parse(string header)
    {
        var found = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (Match m in Define().Matches(header))
        {
            var group = Groups[m.Groups["group"].Value];
            var name = string.Concat(m.Groups["name"].Value.Split('_').Select(w => w[..1] + w[1..].ToLowerInvariant()));
            var text = m.Groups["value"].Value.Trim('(', ')');
            var value = text.StartsWith("0x", StringComparison.Ordinal)
                ? long.Parse(text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                : long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            found.Add($"{group}.{name}", value);
        }

        return found;
    }

    // What differs between the header's constants and CepAbi's, both ways.
    private static List<string> Drift(Dictionary<string, long> header)
    {
        var compiled = typeof(CepAbi).GetNestedTypes()
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral)
                .Select(f => (Key: $"{t.Name}.{f.Name}", Value: Convert.ToInt64(f.GetRawConstantValue(), CultureInfo.InvariantCulture))))
            .ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        var drift = new List<string>();
        foreach (var (key, value) in header)
        {
            if (!compiled.TryGetValue(key, out var cs))
            {
                drift.Add($"{key}: in the header, not in CepAbi");
            }
            else if (cs != value)
            {
                drift.Add($"{key}: the header says {value}, CepAbi {cs}");
            }
        }

        drift.AddRange(compiled.Keys.Where(k => !header.ContainsKey(k)).Select(k => $"{k}: in CepAbi, not in the header"));
        return drift;
    }

    [GeneratedRegex(@"^#define CEP_(?<group>RECORD|OFF|FLAG|USERLOCK|ITER|OPEN|MODE)_(?<name>[A-Z0-9_]+)\s+(?<value>0x[0-9a-fA-F]+|\d+|\(-\d+\))", RegexOptions.Multiline)]
    private static partial Regex Define();
}
