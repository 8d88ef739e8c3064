using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Bpf;

namespace EphemeralPorts.Tests.Acquisition.Bpf;

/// <summary>
/// The run's BPF reader (<see cref="OpenOnce{T}"/>): opened at most once however many namespaces
/// ask at once, a refusal kept with its reason for every one of them, closed with the run.
/// </summary>
public class BpfReaderHolderTests
{
    private sealed class Probe : IDisposable
    {
        public int Disposed { get; private set; }

        public void Dispose() => Disposed++;
    }

    [Fact]
    public void Opens_once_for_many_threads_and_hands_each_the_same_reader()
    {
        var opened = 0;
        using var holder = new OpenOnce<Probe>(() =>
        {
            Interlocked.Increment(ref opened);
            Thread.Sleep(50);
            return new Probe();
        });
        var got = new Probe[8];
        var threads = Enumerable.Range(0, got.Length).Select(i => new Thread(() => got[i] = holder.Get())).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        opened.ShouldBe(1);
        got.Distinct().Count().ShouldBe(1);
    }

    [Fact]
    public void A_refusal_is_remembered_with_its_reason_and_not_tried_again()
    {
        var tries = 0;
        using var holder = new OpenOnce<Probe>(() =>
        {
            tries++;
            throw new SourceRefusedException("BPF needs root or CAP_BPF and CAP_PERFMON (uid 65534 has neither)");
        });
        Should.Throw<SourceRefusedException>(holder.Get).Message.ShouldBe("BPF needs root or CAP_BPF and CAP_PERFMON (uid 65534 has neither)");
        Should.Throw<SourceRefusedException>(holder.Get).Message.ShouldBe("BPF needs root or CAP_BPF and CAP_PERFMON (uid 65534 has neither)");
        tries.ShouldBe(1);
    }

    [Fact]
    public void Another_failure_is_not_taken_for_a_refusal()
    {
        // Only the kernel's refusal is an answer to keep; anything else is tried again (and shows).
        var tries = 0;
        using var holder = new OpenOnce<Probe>(() => ++tries == 1 ? throw new IOException("transient") : new Probe());
        Should.Throw<IOException>(holder.Get);
        holder.Get().ShouldNotBeNull();
        tries.ShouldBe(2);
    }

    [Fact]
    public void Disposing_it_disposes_the_reader_once_and_later_uses_fail()
    {
        var holder = new OpenOnce<Probe>(() => new Probe());
        var reader = holder.Get();
        holder.Dispose();
        holder.Dispose();
        reader.Disposed.ShouldBe(1);
        Should.Throw<ObjectDisposedException>(holder.Get);
    }

    [Fact]
    public void Disposing_does_not_wait_for_an_open_under_way_and_what_it_opens_is_disposed()
    {
        // The run answers at its timeout while an abandoned thread may still be opening.
        using var opening = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new Probe();
        var holder = new OpenOnce<Probe>(() =>
        {
            opening.Set();
            release.Wait(TimeSpan.FromSeconds(30)).ShouldBeTrue();
            return reader;
        });
        Exception? seen = null;
        var thread = new Thread(() => seen = Record.Exception(holder.Get));
        thread.Start();
        opening.Wait(TimeSpan.FromSeconds(30)).ShouldBeTrue();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        holder.Dispose();
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));
        release.Set();
        thread.Join(TimeSpan.FromSeconds(30)).ShouldBeTrue();
        seen.ShouldBeOfType<ObjectDisposedException>();
        reader.Disposed.ShouldBe(1);
    }

    [Fact]
    public void A_run_that_never_read_through_BPF_opens_nothing()
    {
        var opened = false;
        var holder = new OpenOnce<Probe>(() =>
        {
            opened = true;
            return new Probe();
        });
        holder.Dispose();
        opened.ShouldBeFalse();
    }

    [Fact]
    public void Without_the_native_library_the_reader_is_refused_with_a_reason()
    {
        // dotnet test runs without libcep_bpf: the source is refused, never crashes.
        using var holder = BpfSource.NewReader();
        Should.Throw<SourceRefusedException>(holder.Get).Message.ShouldContain("not linked in");
    }
}
