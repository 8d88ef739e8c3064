namespace EphemeralPorts.Plugin;

/// <summary>One performance data item, <c>'label'=value[uom];[warn];[crit];[min];[max]</c>.</summary>
public sealed record PerfDatum(string Label, double Value, string Uom = "", string Warn = "", string Crit = "", double? Min = null, double? Max = null)
{
    private static readonly string[] AllowedUoms = ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"];

    public override string ToString()
    {
        if (Label.Length == 0 || Label.AsSpan().IndexOfAny("'=|") >= 0)
        {
            throw new InvalidOperationException($"perfdata label '{Label}' may not be empty or contain ' = |");
        }

        if (Array.IndexOf(AllowedUoms, Uom) < 0)
        {
            throw new InvalidOperationException($"perfdata unit '{Uom}' is not one the guidelines allow");
        }

        string[] fields =
        [
            $"'{Label}'={Numbers.Format(Value)}{Uom}",
            Warn,
            Crit,
            Min is { } min ? Numbers.Format(min) : string.Empty,
            Max is { } max ? Numbers.Format(max) : string.Empty,
        ];
        var used = fields.Length;
        while (used > 1 && fields[used - 1].Length == 0)
        {
            used--;
        }

        return string.Join(';', fields, 0, used);
    }
}
