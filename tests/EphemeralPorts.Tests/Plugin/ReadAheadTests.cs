using EphemeralPorts.Plugin;

namespace EphemeralPorts.Tests.Plugin;

/// <summary>
/// The read-ahead the BPF walk and the conntrack dump share: chunks taken in order on the calling
/// thread, the reader never more than the pending count ahead, every chunk given back, the reader
/// joined before Run returns, and a failed read rethrown after what came before it was taken.
/// </summary>
public class ReadAheadTests
{
    [Fact]
    public void Every_chunk_is_taken_in_order_on_the_calling_thread_and_given_back()
    {
        var caller = Environment.CurrentManagedThreadId;
        var next = 0;
        var readers = new HashSet<int>();
        var taken = new List<int>();
        var recycled = new List<int>();
        var ahead = 0;
        var mostAhead = 0;
        ReadAhead.Run<int>("test", 2, () =>
        {
            lock (readers)
            {
                readers.Add(Environment.CurrentManagedThreadId);
                mostAhead = Math.Max(mostAhead, ++ahead);
            }

            return next < 50 ? next++ : null;
        }, chunk =>
        {
            Environment.CurrentManagedThreadId.ShouldBe(caller);
            Thread.Sleep(1); // a slow taker: the reader must wait for room, not run away
            lock (readers)
            {
                ahead--;
            }

            taken.Add(chunk);
            return false;
        }, recycled.Add).ShouldBeTrue();

        taken.ShouldBe(Enumerable.Range(0, 50));
        recycled.ShouldBe(taken);
        readers.ShouldNotContain(caller);
        mostAhead.ShouldBeLessThanOrEqualTo(3, "two pending, one being read");
    }

    [Fact]
    public void The_end_found_stops_the_reader_and_what_it_read_ahead_is_given_back()
    {
        var read = 0;
        var recycled = 0;
        ReadAhead.Run<int>("test", 4, () => Interlocked.Increment(ref read), chunk => chunk == 3, _ => Interlocked.Increment(ref recycled)).ShouldBeTrue();
        // Joined: nothing is read after Run returned, and every chunk read went back.
        var after = Volatile.Read(ref read);
        Thread.Sleep(20);
        Volatile.Read(ref read).ShouldBe(after);
        recycled.ShouldBe(after);
    }

    [Fact]
    public void A_failed_read_is_rethrown_after_the_chunks_before_it_were_taken()
    {
        var next = 0;
        var taken = new List<int>();
        var failure = Should.Throw<IOException>(() => ReadAhead.Run<int>("test", 2, () => next < 5 ? next++ : throw new IOException("read failed"), chunk =>
        {
            taken.Add(chunk);
            return false;
        }, _ => { }));
        failure.Message.ShouldBe("read failed");
        taken.ShouldBe([0, 1, 2, 3, 4]);
    }

    [Fact]
    public void A_failed_take_stops_and_joins_the_reader_and_every_chunk_goes_back()
    {
        var read = 0;
        var recycled = 0;
        Should.Throw<InvalidDataException>(() => ReadAhead.Run<int>("test", 3, () => Interlocked.Increment(ref read), chunk => chunk == 2 ? throw new InvalidDataException("bad") : false, _ => Interlocked.Increment(ref recycled)));
        var after = Volatile.Read(ref read);
        Thread.Sleep(20);
        Volatile.Read(ref read).ShouldBe(after, "the reader is joined");
        recycled.ShouldBe(after);
    }
}
