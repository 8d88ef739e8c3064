using EphemeralPorts.Check;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>
/// Where the library's typed reasons become this command line's words: the input a failure is
/// about becomes the option that gave it, a fix names the options that apply. The library itself
/// never writes an option's name, so another front end (a test, an exporter) can say it its way.
/// </summary>
public static class Reasons
{
    /// <summary>The failure as the operator of this command line reads it; a report as it is.</summary>
    public static CheckOutcome InOptionTerms(CheckOutcome outcome) => outcome is CheckFailure failure
        ? failure with { Message = Say(failure.About, failure.Message, failure.Fix), About = null, Fix = null }
        : outcome;

    /// <summary>The message of <paramref name="e"/>, in this command line's words.</summary>
    public static string Say(CheckException e) => Say(e.About, e.Message, e.Fix);

    private static string Say(Input? about, string message, Remedy? fix)
    {
        var text = about is { } input ? $"{Option(input)} {message}" : message;
        return fix is { } remedy ? $"{text}: {Fix(remedy)}" : text;
    }

    /// <summary>The option that gives <paramref name="input"/>.</summary>
    public static string Option(Input input) => input switch
    {
        Input.ProcRoot => "--proc-root",
        Input.Netns => "--netns",
        Input.Pid => "--pid",
        Input.Source => "--source",
        Input.AllNamespaces => "--all-namespaces",
        _ => throw new ArgumentOutOfRangeException(nameof(input)),
    };

    private static string Fix(Remedy remedy) => remedy switch
    {
        Remedy.EnterTheNamespace => $"run the check in that namespace (host networking: hostNetwork: true, --network host), as root, or name it with {Option(Input.Netns)} or {Option(Input.Pid)}",
        Remedy.PrivilegesForEveryNamespace => $"run it through sudo with the shipped rule (icinga/sudoers), or check this namespace alone without {Option(Input.AllNamespaces)}",
        _ => throw new ArgumentOutOfRangeException(nameof(remedy)),
    };
}
