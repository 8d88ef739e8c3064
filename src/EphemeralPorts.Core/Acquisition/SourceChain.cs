using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition;

/// <summary>What a chain of sources read: the model it fed, the source that answered and what was said on the way.</summary>
public sealed record ChainReading(PortUsageCalculator Calculator, ISocketSource Source, IReadOnlyList<string> Notes, IReadOnlyList<string> Diagnostics);

/// <summary>
/// Tries sources in order: the first that the kernel lets read a namespace answers, and each
/// refusal before it is recorded as a note. A refusal can come after some sockets were counted (a
/// later dump of several), so every try starts from a fresh model.
/// </summary>
public static class SourceChain
{
    public static ChainReading Read(IReadOnlyList<ISocketSource> order, SourceRequest request, Func<PortUsageCalculator> freshModel)
    {
        var usable = order.Where(s => s.CanRead(request.View)).ToList();
        if (usable.Count == 0)
        {
            throw new CheckException($"no socket source of {string.Join(", ", order.Select(s => s.Name))} can read {request.View.Root.Path}");
        }

        var notes = new List<string>();
        for (var i = 0; ; i++)
        {
            var source = usable[i];
            var model = freshModel();
            try
            {
                var reading = source.Read(request, model);
                if (notes.Count == 0)
                {
                    notes.Add(reading.Note);
                }

                return new ChainReading(model, source, notes, reading.Diagnostics);
            }
            catch (SourceRefusedException e) when (i + 1 < usable.Count)
            {
                // One note says what was refused, what reads instead and what that reading loses.
                var next = usable[i + 1];
                var lost = next.BlindSpots.Except(source.BlindSpots).Select(b => b.What).ToList();
                notes.Add($"{source.Name} unavailable ({e.Message}): sockets read {next.Describe(request.View, brief: true)} instead"
                    + (lost.Count > 0 ? $", {string.Join(", ", lost)} not seen" : string.Empty));
            }
            catch (SourceRefusedException e)
            {
                throw new CheckException(Input.Source, $"{source.Name}: {e.Message}", e);
            }
        }
    }
}
