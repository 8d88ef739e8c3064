using System.Globalization;

namespace EphemeralPorts.Plugin;

/// <summary>C-locale number formatting for plugin output: '.' decimal, no grouping, no exponent.</summary>
public static class Numbers
{
    public static string Format(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), "perfdata numbers must be finite");
        }

        var text = Math.Round(value, 2).ToString("0.##", CultureInfo.InvariantCulture);
        return text == "-0" ? "0" : text;
    }

    public static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A threshold as the user wrote it: up to 6 decimals, so 0.001 does not print as 0.</summary>
    public static string FormatThreshold(double value) => value.ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>
    /// Percentage of <paramref name="part"/> in <paramref name="whole"/>; a whole of 0 is fully used.
    /// A share of a capacity is at most 100% (a tuple of an odd-sized range may hold the port the
    /// kernel guarantees no tuple; a port reserved since it was taken still counts).
    /// </summary>
    public static double Percent(long part, long whole) => whole <= 0 || part >= whole ? 100.0 : 100.0 * part / whole;
}
