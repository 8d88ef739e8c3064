namespace EphemeralPorts.Plugin;

/// <summary>
/// "Cannot determine the state": the one exception type that becomes an UNKNOWN result.
/// The message is shown to the operator, so it says what went wrong and where. Where the cause
/// is an input the caller gave (<see cref="About"/>) or the fix is one of the caller's choices
/// (<see cref="Fix"/>), those are typed: the library never writes a command-line option's name,
/// the executable turns them into its options' names (Cli/Reasons.cs).
/// </summary>
public sealed class CheckException : Exception
{
    public CheckException(string message) : base(message) { }

    public CheckException(string message, Exception inner) : base(message, inner) { }

    public CheckException(Input about, string message, Remedy? fix = null) : base(message)
    {
        About = about;
        Fix = fix;
    }

    public CheckException(Input about, string message, Exception inner) : base(message, inner) => About = about;

    /// <summary>The input the message is about (shown before it), or null when it is about the host.</summary>
    public Input? About { get; }

    /// <summary>What the caller can do about it (shown after it), or null.</summary>
    public Remedy? Fix { get; }
}

/// <summary>The inputs of a check that a failure can be about.</summary>
public enum Input
{
    /// <summary>The /proc tree read (a path).</summary>
    ProcRoot,

    /// <summary>A network namespace given by name or nsfs path.</summary>
    Netns,

    /// <summary>A network namespace given by a process id.</summary>
    Pid,

    /// <summary>The way of reading sockets chosen.</summary>
    Source,

    /// <summary>Every network namespace of the host.</summary>
    AllNamespaces,
}

/// <summary>Fixes a failure can point to, which name the caller's choices.</summary>
public enum Remedy
{
    /// <summary>Read the namespace a foreign /proc shows from inside it, as root, or name it.</summary>
    EnterTheNamespace,

    /// <summary>Get the privileges to find and enter every namespace, or check this one alone.</summary>
    PrivilegesForEveryNamespace,
}
