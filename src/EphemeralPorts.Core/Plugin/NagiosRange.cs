using System.Globalization;

namespace EphemeralPorts.Plugin;

/// <summary>
/// A Monitoring Plugins threshold range <c>[@]start:end</c>: inclusive bounds, <c>~</c> for minus
/// infinity, an empty end for plus infinity, a bare <c>N</c> meaning <c>0:N</c>. A value outside the
/// range alerts; with <c>@</c> a value inside it does. A trailing <c>%</c> on a bound is accepted
/// because this plugin's thresholds are percentages.
/// </summary>
public sealed record NagiosRange(double Start, double End, bool Inside)
{
    public static NagiosRange Parse(string text) =>
        TryParse(text, out var range, out var error) ? range! : throw new FormatException(error);

    public static bool TryParse(string? text, out NagiosRange? range, out string? error)
    {
        range = null;
        error = null;
        var spec = (text ?? string.Empty).Trim();
        if (spec.Length == 0)
        {
            error = "empty range";
            return false;
        }

        var inside = spec[0] == '@';
        if (inside)
        {
            spec = spec[1..];
        }

        double start = 0;
        string endText;
        var colon = spec.IndexOf(':');
        if (colon >= 0)
        {
            var startText = spec[..colon];
            endText = spec[(colon + 1)..];
            if (startText == "~")
            {
                start = double.NegativeInfinity;
            }
            else if (startText.Length > 0 && !TryNumber(startText, out start))
            {
                error = $"'{startText}' is not a number";
                return false;
            }
        }
        else
        {
            endText = spec;
        }

        var end = double.PositiveInfinity;
        if (endText.Length == 0)
        {
            if (colon < 0)
            {
                error = "no end";
                return false;
            }
        }
        else if (!TryNumber(endText, out end))
        {
            error = $"'{endText}' is not a number";
            return false;
        }

        if (start > end)
        {
            error = $"start {Numbers.FormatThreshold(start)} is greater than end {Numbers.FormatThreshold(end)}";
            return false;
        }

        range = new NagiosRange(start, end, inside);
        return true;
    }

    // Plain decimal numbers only: no exponent, no hex, no "inf"/"nan", no grouping.
    private static bool TryNumber(string text, out double value)
    {
        value = 0;
        var s = text.EndsWith('%') ? text[..^1] : text;
        var i = 0;
        if (i < s.Length && (s[i] == '+' || s[i] == '-'))
        {
            i++;
        }

        var digits = 0;
        var dots = 0;
        for (; i < s.Length; i++)
        {
            if (char.IsAsciiDigit(s[i]))
            {
                digits++;
            }
            else if (s[i] == '.' && dots == 0)
            {
                dots++;
            }
            else
            {
                return false;
            }
        }

        return digits > 0
            && double.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value)
            && double.IsFinite(value);
    }

    /// <summary>True when <paramref name="value"/> must raise an alert.</summary>
    public bool Alerts(double value)
    {
        var within = value >= Start && value <= End;
        return Inside ? within : !within;
    }

    /// <summary>
    /// The number for the warn/crit field of perfdata, or "" when the range is not a plain upper bound.
    /// Icinga 2 silently drops range syntax there; for a percentage (never below 0) <c>~:N</c> and
    /// <c>0:N</c> mean the same as <c>N</c>, so those are written as <c>N</c>.
    /// </summary>
    public string PerfDataValue =>
        !Inside && Start <= 0 && double.IsFinite(End) && End >= 0 ? Numbers.FormatThreshold(End) : string.Empty;

    /// <summary>The canonical spelling, which parses back to an equal range.</summary>
    public override string ToString()
    {
        var prefix = Inside ? "@" : string.Empty;
        var end = double.IsPositiveInfinity(End) ? string.Empty : Numbers.FormatThreshold(End);
        if (Start == 0 && end.Length > 0)
        {
            return prefix + end;
        }

        var start = double.IsNegativeInfinity(Start) ? "~" : Numbers.FormatThreshold(Start);
        return $"{prefix}{start}:{end}";
    }
}
