namespace EphemeralPorts.Plugin;

/// <summary>
/// "Cannot determine the state": the one exception type that becomes an UNKNOWN result.
/// The message is shown to the operator as is, so it says what went wrong and where.
/// </summary>
public sealed class CheckException : Exception
{
    public CheckException(string message) : base(message) { }

    public CheckException(string message, Exception inner) : base(message, inner) { }
}
