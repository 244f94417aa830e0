using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// The device side of a split virtqueue against a driver-side mock: chains popped as written, used elements
/// published as the spec orders them, every malformed chain refused with the right reason, ring errors stopping
/// the queue, and the used-buffer notification rules with and without EVENT_IDX.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class SplitVirtQueueTests : IDisposable
{
    private const ushort Size = 8;
    private const int QueueIndex = 3;
    private const ulong AllFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors;
    private const ulong Gap = 0x10_0000;          // RAM is [0, 1 MiB) and [2 MiB, 3 MiB)
    private const ulong SecondRegion = 0x20_0000;

    private readonly GuestMemory _memory = GuestMemory.Create([new MemoryRange(0, Gap), new MemoryRange(SecondRegion, 0x10_0000)]);
    private readonly RecordingVirtioInterrupt _interrupt = new();
    private readonly DriverQueue _driver;

    public SplitVirtQueueTests()
    {
        _driver = new DriverQueue(_memory, 0x1000, Size);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void TryPop_EmptyRing_ReturnsFalse()
    {
        var queue = NewQueue();

        Assert.False(queue.TryPop(out _));
        Assert.Equal(0, queue.NextAvailIndex);
        Assert.Equal(0, queue.Counters.Chains);
    }

    [Fact]
    public void TryPop_DirectChain_GivesReadableThenWritableSegments()
    {
        var queue = NewQueue();
        ushort head = _driver.AddChain(DriverBuffer.Out(0x10000, 16), DriverBuffer.Out(0x10100, 512), DriverBuffer.In(0x10400, 1));

        Assert.True(queue.TryPop(out var chain));

        Assert.Equal(head, chain.HeadIndex);
        Assert.Equal([new ChainSegment(0x10000, 16), new ChainSegment(0x10100, 512)], chain.Readable.ToArray());
        Assert.Equal([new ChainSegment(0x10400, 1)], chain.Writable.ToArray());
        Assert.Equal(528UL, chain.ReadableLength);
        Assert.Equal(1UL, chain.WritableLength);
        Assert.Equal(1, queue.NextAvailIndex);
        Assert.Equal(1, queue.Counters.Chains);
        Assert.False(queue.TryPop(out _));
    }

    [Fact]
    public void TryPop_IndirectChain_FollowsTheTable()
    {
        var queue = NewQueue();
        ushort head = _driver.AddIndirectChain(0x8000, DriverBuffer.Out(0x10000, 16), DriverBuffer.In(0x10400, 4096), DriverBuffer.In(0x20_0000, 1));

        Assert.True(queue.TryPop(out var chain));

        Assert.Equal(head, chain.HeadIndex);
        Assert.Equal([new ChainSegment(0x10000, 16)], chain.Readable.ToArray());
        Assert.Equal([new ChainSegment(0x10400, 4096), new ChainSegment(0x20_0000, 1)], chain.Writable.ToArray());
        Assert.Equal(4097UL, chain.WritableLength);
    }

    [Fact]
    public void TryPop_IndirectAfterDirectDescriptors_JoinsBoth()
    {
        var queue = NewQueue();
        _driver.WriteDescriptorAt(0x8000, 0, 0x10400, 8, SplitVirtQueue.DescriptorFlagWrite, 0);
        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, 0x8000, 16, SplitVirtQueue.DescriptorFlagIndirect, 0);
        _driver.Publish(0);

        Assert.True(queue.TryPop(out var chain));

        Assert.Equal([new ChainSegment(0x10000, 16)], chain.Readable.ToArray());
        Assert.Equal([new ChainSegment(0x10400, 8)], chain.Writable.ToArray());
    }

    [Fact]
    public void TryPop_ZeroLengthBufferInRam_IsAccepted()
    {
        var queue = NewQueue();
        _driver.AddChain(DriverBuffer.Out(0x10000, 0), DriverBuffer.In(0x10400, 1));

        Assert.True(queue.TryPop(out var chain));
        Assert.Equal([new ChainSegment(0x10000, 0)], chain.Readable.ToArray());
    }

    [Fact]
    public void AddUsed_WritesTheElementAndBumpsTheUsedIndex()
    {
        var queue = NewQueue();
        _driver.AddChain(DriverBuffer.In(0x10000, 100));
        ushort second = _driver.AddChain(DriverBuffer.In(0x10100, 100));
        queue.TryPop(out var first);
        ushort firstHead = first.HeadIndex;
        queue.TryPop(out _);

        queue.AddUsed(second, 7);
        queue.AddUsed(firstHead, 100);

        Assert.Equal(2, _driver.UsedIndex);
        Assert.Equal([(1u, 7u), (0u, 100u)], _driver.TakeUsed());
        Assert.Equal(2, queue.NextUsedIndex);
    }

    [Fact]
    public void FullRing_OfSizeChains_PopsEveryOne()
    {
        var queue = NewQueue();
        for (int i = 0; i < Size; i++)
        {
            _driver.AddChain(DriverBuffer.In(0x10000 + ((ulong)i * 0x100), 16));
        }

        int popped = 0;
        while (queue.TryPop(out var chain))
        {
            Assert.Equal(popped, chain.HeadIndex);
            queue.AddUsed(chain.HeadIndex, 0);
            popped++;
        }

        Assert.Equal(Size, popped);
        Assert.False(queue.IsBroken);
    }

    [Fact]
    public void Indices_WrapAroundSixteenBits()
    {
        _driver.StartAt(0xFFFE);
        var queue = NewQueue();
        queue.Restore(new SplitVirtQueueState(0xFFFE, 0xFFFE, 0xFFFE, false));
        for (int i = 0; i < 4; i++)
        {
            _driver.AddChain(DriverBuffer.In(0x10000 + ((ulong)i * 0x100), 16));
        }

        var heads = new List<int>();
        while (queue.TryPop(out var chain))
        {
            heads.Add(chain.HeadIndex);
            queue.AddUsed(chain.HeadIndex, 16);
        }

        Assert.Equal([0, 1, 2, 3], heads);
        Assert.Equal(2, _driver.UsedIndex);
        Assert.Equal([(0u, 16u), (1u, 16u), (2u, 16u), (3u, 16u)], _driver.TakeUsed());
    }

    // ---- Malformed chains: refused, returned used with length 0, counted; the queue carries on. ----

    [Fact]
    public void DescriptorLoop_IsRefused()
    {
        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, 0x10100, 16, SplitVirtQueue.DescriptorFlagNext, 0);
        AssertRefused(0, ChainError.DescriptorLoop);
    }

    [Fact]
    public void DescriptorPointingAtItself_IsRefused()
    {
        _driver.WriteDescriptor(2, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 2);
        AssertRefused(2, ChainError.DescriptorLoop);
    }

    [Fact]
    public void LongLoopBackToTheHead_IsRefused()
    {
        // Descriptors 0..Size-2 in a ring (the last descriptor is the good chain AssertRefused adds).
        for (ushort i = 0; i < Size - 1; i++)
        {
            _driver.WriteDescriptor(i, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, (ushort)((i + 1) % (Size - 1)));
        }

        AssertRefused(0, ChainError.DescriptorLoop);
    }

    [Theory]
    [InlineData(0x18_0000UL, 16u)]               // in the hole between the regions
    [InlineData(0x40_0000UL, 16u)]               // beyond the last region
    [InlineData(0xF_FFF0UL, 0x20u)]              // starts in RAM, runs into the hole
    [InlineData(0x2F_FFFFUL, 2u)]                // runs off the end of RAM
    [InlineData(0xFFFF_FFFF_FFFF_FFF0UL, 0x20u)] // address + length overflows 64 bits
    [InlineData(0x10000UL, 0xFFFF_FFFFu)]        // 4 GiB from inside RAM
    public void BufferOutsideRam_IsRefused(ulong address, uint length)
    {
        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, address, length, SplitVirtQueue.DescriptorFlagWrite, 0);
        AssertRefused(0, ChainError.BufferOutsideMemory);
    }

    [Fact]
    public void NextBeyondTheTable_IsRefused()
    {
        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, Size);
        AssertRefused(0, ChainError.NextOutOfRange);
    }

    [Fact]
    public void ReadableAfterWritable_IsRefused()
    {
        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagWrite | SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, 0x10100, 16, 0, 0);
        AssertRefused(0, ChainError.ReadableAfterWritable);
    }

    [Fact]
    public void Indirect_WithoutTheFeature_IsRefused()
    {
        _driver.WriteDescriptorAt(0x8000, 0, 0x10000, 16, 0, 0);
        _driver.WriteDescriptor(0, 0x8000, 16, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.IndirectNotNegotiated, VirtioFeatures.Version1);
    }

    [Fact]
    public void Indirect_WithNext_IsRefused()
    {
        _driver.WriteDescriptorAt(0x8000, 0, 0x10000, 16, 0, 0);
        _driver.WriteDescriptor(0, 0x8000, 16, SplitVirtQueue.DescriptorFlagIndirect | SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, 0x10100, 16, SplitVirtQueue.DescriptorFlagWrite, 0);
        AssertRefused(0, ChainError.IndirectWithNext);
    }

    [Fact]
    public void IndirectInsideIndirect_IsRefused()
    {
        _driver.WriteDescriptorAt(0x9000, 0, 0x10000, 16, 0, 0);
        _driver.WriteDescriptorAt(0x8000, 0, 0x9000, 16, SplitVirtQueue.DescriptorFlagIndirect, 0);
        _driver.WriteDescriptor(0, 0x8000, 16, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.NestedIndirect);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(17u)]
    [InlineData(8u)]
    [InlineData((uint)(16 * (Size + 1)))]
    public void IndirectTable_WithABadLength_IsRefused(uint length)
    {
        _driver.WriteDescriptor(0, 0x8000, length, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.IndirectTableLength);
    }

    [Theory]
    [InlineData(0x18_0000UL)]
    [InlineData(0xF_FFF0UL)]
    [InlineData(0xFFFF_FFFF_FFFF_FFF0UL)]
    public void IndirectTable_OutsideRam_IsRefused(ulong table)
    {
        _driver.WriteDescriptor(0, table, 32, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.IndirectTableOutsideMemory);
    }

    [Fact]
    public void LoopInsideAnIndirectTable_IsRefused()
    {
        _driver.WriteDescriptorAt(0x8000, 0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptorAt(0x8000, 1, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 0);
        _driver.WriteDescriptor(0, 0x8000, 32, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.DescriptorLoop);
    }

    [Fact]
    public void NextBeyondAnIndirectTable_IsRefused()
    {
        _driver.WriteDescriptorAt(0x8000, 0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 2);
        _driver.WriteDescriptorAt(0x8000, 1, 0x10000, 16, 0, 0);
        _driver.WriteDescriptor(0, 0x8000, 32, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.NextOutOfRange);
    }

    [Fact]
    public void ChainLongerThanTheQueue_IsRefused()
    {
        // One direct buffer, then an indirect table as large as the queue: Size + 1 buffers.
        for (int i = 0; i < Size; i++)
        {
            _driver.WriteDescriptorAt(0x8000, i, 0x10000, 16, (ushort)(i < Size - 1 ? SplitVirtQueue.DescriptorFlagNext : 0), (ushort)(i + 1));
        }

        _driver.WriteDescriptor(0, 0x10000, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _driver.WriteDescriptor(1, 0x8000, 16 * Size, SplitVirtQueue.DescriptorFlagIndirect, 0);
        AssertRefused(0, ChainError.ChainTooLong);
    }

    [Fact]
    public void IndirectTableAsLargeAsTheQueue_IsAccepted()
    {
        var queue = NewQueue();
        var buffers = Enumerable.Range(0, Size).Select(i => DriverBuffer.In(0x10000 + ((ulong)i * 16), 16)).ToArray();
        _driver.AddIndirectChain(0x8000, buffers);

        Assert.True(queue.TryPop(out var chain));
        Assert.Equal(Size, chain.Writable.Length);
    }

    [Fact]
    public void IndirectDescriptorsWriteFlag_IsIgnored()
    {
        var queue = NewQueue();
        _driver.WriteDescriptorAt(0x8000, 0, 0x10000, 16, 0, 0);
        _driver.WriteDescriptor(0, 0x8000, 16, SplitVirtQueue.DescriptorFlagIndirect | SplitVirtQueue.DescriptorFlagWrite, 0);
        _driver.Publish(0);

        Assert.True(queue.TryPop(out var chain));
        Assert.Equal([new ChainSegment(0x10000, 16)], chain.Readable.ToArray());
        Assert.True(chain.Writable.IsEmpty);
    }

    [Fact]
    public void MalformedChainsAmongGoodOnes_AreEachAnsweredInOrder()
    {
        var queue = NewQueue();
        _driver.AddChain(DriverBuffer.In(0x10000, 16));                   // head 0: good
        _driver.WriteDescriptor(1, 0x40_0000, 16, 0, 0);                 // head 1: outside RAM
        _driver.Publish(1);
        _driver.WriteDescriptor(2, 0x10000, 16, 0, 0);                   // head 2: good
        _driver.Publish(2);

        Assert.True(queue.TryPop(out var first));
        Assert.Equal(0, first.HeadIndex);
        queue.AddUsed(0, 16);
        Assert.True(queue.TryPop(out var second));
        Assert.Equal(2, second.HeadIndex);
        queue.AddUsed(2, 5);

        Assert.Equal([(0u, 16u), (1u, 0u), (2u, 5u)], _driver.TakeUsed());
        Assert.Equal(1, queue.Counters.MalformedChains);
        Assert.Equal(2, queue.Counters.Chains);
    }

    // ---- Ring errors: the queue stops and the device asks for a reset, once. ----

    [Fact]
    public void HeadIndexOutOfRange_StopsTheQueueAndRequestsReset()
    {
        var queue = NewQueue();
        _driver.Publish(Size);

        Assert.False(queue.TryPop(out _));

        AssertStopped(queue, ChainError.HeadOutOfRange);
    }

    [Fact]
    public void AvailableIndexJumpingPastTheSize_StopsTheQueue()
    {
        var queue = NewQueue();
        _driver.SetAvailableIndex(Size + 1);

        Assert.False(queue.TryPop(out _));

        AssertStopped(queue, ChainError.AvailableIndexJump);
    }

    [Fact]
    public void StoppedQueue_PublishesNothingAndPopsNothing()
    {
        var queue = NewQueue();
        _driver.Publish(0xFFFF);
        queue.TryPop(out _);
        _driver.SetAvailableIndex(0);
        _driver.AddChain(DriverBuffer.In(0x10000, 16));

        Assert.False(queue.TryPop(out _));
        queue.AddUsed(0, 16);
        queue.NotifyIfNeeded();

        Assert.Equal(0, _driver.UsedIndex);
        Assert.Empty(_interrupt.QueueSignals);
        Assert.False(queue.EnableNotifications());
        Assert.Equal(1, _interrupt.NeedsResetCalls);
    }

    [Theory]
    [InlineData((ushort)3, 0x1000UL, 0x2000UL, 0x3000UL)]      // size not a power of two
    [InlineData((ushort)0, 0x1000UL, 0x2000UL, 0x3000UL)]      // size 0
    [InlineData((ushort)8, 0x1008UL, 0x2000UL, 0x3000UL)]      // descriptor table not 16-byte aligned
    [InlineData((ushort)8, 0x1000UL, 0x2001UL, 0x3000UL)]      // available ring not 2-byte aligned
    [InlineData((ushort)8, 0x1000UL, 0x2000UL, 0x3002UL)]      // used ring not 4-byte aligned
    [InlineData((ushort)8, 0x18_0000UL, 0x2000UL, 0x3000UL)]   // descriptor table in the hole
    [InlineData((ushort)8, 0x1000UL, 0xF_FFF0UL, 0x3000UL)]    // available ring running into the hole
    [InlineData((ushort)8, 0x1000UL, 0x2000UL, 0x2F_FFF0UL)]   // used ring running off the end of RAM
    public void InvalidLayout_StopsTheQueueAtOnce(ushort size, ulong descriptors, ulong available, ulong used)
    {
        var queue = new SplitVirtQueue(_memory, new VirtQueueLayout(size, descriptors, available, used, true), AllFeatures, QueueIndex, _interrupt);

        Assert.False(queue.TryPop(out _));
        AssertStopped(queue, ChainError.InvalidLayout);
    }

    // ---- Used-buffer notifications (2.7.7). ----

    [Fact]
    public void WithoutEventIndex_EveryBatchNotifies()
    {
        var queue = NewQueue(VirtioFeatures.Version1);
        PopAndUse(queue, 1);
        queue.NotifyIfNeeded();
        PopAndUse(queue, 2);
        queue.NotifyIfNeeded();

        Assert.Equal([QueueIndex, QueueIndex], _interrupt.QueueSignals);
        Assert.Equal(2, queue.Counters.Notifications);
    }

    [Fact]
    public void WithoutEventIndex_NoInterruptFlag_SuppressesTheNotification()
    {
        var queue = NewQueue(VirtioFeatures.Version1);
        _driver.SetAvailableFlags(SplitVirtQueue.AvailableFlagNoInterrupt);
        PopAndUse(queue, 1);

        queue.NotifyIfNeeded();

        Assert.Empty(_interrupt.QueueSignals);
        Assert.Equal(1, queue.Counters.SuppressedNotifications);
    }

    [Fact]
    public void NothingPublished_NoNotificationAndNothingCounted()
    {
        var queue = NewQueue(VirtioFeatures.Version1);

        queue.NotifyIfNeeded();

        Assert.Empty(_interrupt.QueueSignals);
        Assert.Equal(0, queue.Counters.SuppressedNotifications);
    }

    [Fact]
    public void EventIndex_NotifiesOnlyWhenTheUsedIndexPassesUsedEvent()
    {
        var queue = NewQueue();
        _driver.SetUsedEvent(2); // "interrupt me once the element with used index 2 is published"
        var signalsAfterEach = new List<int>();
        for (int i = 0; i < 4; i++)
        {
            PopAndUse(queue, 1);
            queue.NotifyIfNeeded();
            signalsAfterEach.Add(_interrupt.QueueSignals.Count);
        }

        // used idx goes 1, 2, 3, 4: only the step from 2 to 3 (element 2 published) crosses used_event.
        Assert.Equal([0, 0, 1, 1], signalsAfterEach);
        Assert.Equal(3, queue.Counters.SuppressedNotifications);
    }

    [Fact]
    public void EventIndex_ABatchThatCrossesUsedEvent_NotifiesOnce()
    {
        var queue = NewQueue();
        _driver.SetUsedEvent(1);
        PopAndUse(queue, 3);

        queue.NotifyIfNeeded();

        Assert.Equal([QueueIndex], _interrupt.QueueSignals);
    }

    [Fact]
    public void EventIndex_IgnoresTheNoInterruptFlag()
    {
        var queue = NewQueue();
        _driver.SetAvailableFlags(SplitVirtQueue.AvailableFlagNoInterrupt);
        _driver.SetUsedEvent(0);
        PopAndUse(queue, 1);

        queue.NotifyIfNeeded();

        Assert.Equal([QueueIndex], _interrupt.QueueSignals);
    }

    [Theory]
    [InlineData(0, 1, 0, true)]           // event 0 crossed by the first element
    [InlineData(1, 1, 0, false)]
    [InlineData(1, 2, 1, true)]
    [InlineData(5, 3, 0, false)]          // event ahead of everything published
    [InlineData(2, 3, 0, true)]           // event inside the batch [0, 3)
    [InlineData(0xFFFF, 1, 0xFFFE, true)] // batch wraps past 0xFFFF
    [InlineData(0xFFFE, 1, 0xFFFF, false)]
    public void NeedsEvent_IsVringNeedEvent(int eventIndex, int newIndex, int oldIndex, bool expected)
    {
        Assert.Equal(expected, SplitVirtQueue.NeedsEvent((ushort)eventIndex, (ushort)newIndex, (ushort)oldIndex));
    }

    // ---- Available-buffer notifications (2.7.10). ----

    [Fact]
    public void EventIndex_EnableNotifications_PublishesAvailEventAtTheNextSlot()
    {
        var queue = NewQueue();
        PopAndUse(queue, 3);

        bool more = queue.EnableNotifications();

        Assert.False(more);
        Assert.Equal(3, _driver.AvailEvent);
        Assert.Equal(0, _driver.UsedFlags);
    }

    [Fact]
    public void EnableNotifications_SeesBuffersThatArrivedMeanwhile()
    {
        var queue = NewQueue();
        PopAndUse(queue, 1);
        _driver.AddChain(DriverBuffer.In(0x10000, 16));

        Assert.True(queue.EnableNotifications());
    }

    [Fact]
    public void WithoutEventIndex_DisableAndEnable_ToggleNoNotify()
    {
        var queue = NewQueue(VirtioFeatures.Version1);

        queue.DisableNotifications();
        ushort disabled = _driver.UsedFlags;
        queue.EnableNotifications();

        Assert.Equal(SplitVirtQueue.UsedFlagNoNotify, disabled);
        Assert.Equal(0, _driver.UsedFlags);
        Assert.Equal(0, _driver.AvailEvent);
    }

    // ---- Snapshots. ----

    [Fact]
    public void SaveRestore_ANewQueueContinuesWhereTheOldOneStopped()
    {
        var queue = NewQueue();
        _driver.SetUsedEvent(0xFFFF);
        PopAndUse(queue, 2);
        queue.NotifyIfNeeded();
        _driver.AddChain(DriverBuffer.In(0x10000, 16));
        var state = queue.Save();

        var restored = NewQueue();
        restored.Restore(state);

        Assert.Equal(new SplitVirtQueueState(2, 2, 2, false), state);
        Assert.True(restored.TryPop(out var chain));
        Assert.Equal(2, chain.HeadIndex);
        restored.AddUsed(chain.HeadIndex, 9);
        Assert.Equal(3, _driver.UsedIndex);
        Assert.Equal((2u, 9u), _driver.UsedAt(2));
    }

    // ---- No allocation per chain. ----

    [Fact]
    public void PopUseNotify_AllocatesNothing()
    {
        var queue = NewQueue();
        for (ushort i = 0; i < Size; i++)
        {
            _driver.WriteDescriptor(i, 0x10000 + (16UL * i), 16, SplitVirtQueue.DescriptorFlagWrite, 0);
        }

        void Round()
        {
            for (ushort i = 0; i < Size; i++)
            {
                _driver.Publish(i);
            }

            queue.DisableNotifications();
            while (queue.TryPop(out var chain))
            {
                queue.AddUsed(chain.HeadIndex, (uint)chain.WritableLength);
            }

            queue.EnableNotifications();
            queue.NotifyIfNeeded();
        }

        Round();

        // A collection that retires this thread's allocation context can count its unused tail as allocated; do it
        // now, with nothing allocated after it, so only the rounds' own allocations are measured.
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1001 * Size, queue.Counters.Chains);
    }

    private SplitVirtQueue NewQueue(ulong features = AllFeatures) =>
        new(_memory, _driver.Layout, features, QueueIndex, _interrupt);

    private void PopAndUse(SplitVirtQueue queue, int chains)
    {
        for (int i = 0; i < chains; i++)
        {
            _driver.AddChain(DriverBuffer.In(0x10000, 16));
        }

        for (int i = 0; i < chains; i++)
        {
            Assert.True(queue.TryPop(out var chain));
            queue.AddUsed(chain.HeadIndex, 16);
        }
    }

    /// <summary>Publishes <paramref name="head"/> and a good chain after it: the bad one comes back used with length 0, the good one pops.</summary>
    private void AssertRefused(ushort head, ChainError expected, ulong features = AllFeatures)
    {
        var queue = NewQueue(features);
        _driver.WriteDescriptor(Size - 1, 0x10000, 16, SplitVirtQueue.DescriptorFlagWrite, 0);
        var before = Snapshot();
        _driver.Publish(head);
        _driver.Publish(Size - 1);

        Assert.True(queue.TryPop(out var good));

        Assert.Equal(Size - 1, good.HeadIndex);
        Assert.Equal(1, queue.Counters.MalformedChains);
        Assert.Equal(expected, queue.Counters.LastError);
        Assert.Equal([((uint)head, 0u)], _driver.TakeUsed());
        Assert.False(queue.IsBroken);
        Assert.Equal(0, _interrupt.NeedsResetCalls);
        AssertOnlyRingsChanged(before);
    }

    private void AssertStopped(SplitVirtQueue queue, ChainError expected)
    {
        Assert.True(queue.IsBroken);
        Assert.Equal(1, queue.Counters.RingErrors);
        Assert.Equal(expected, queue.Counters.LastError);
        Assert.Equal(1, _interrupt.NeedsResetCalls);
        Assert.False(queue.TryPop(out _));
        Assert.Equal(1, _interrupt.NeedsResetCalls);
    }

    private byte[] Snapshot()
    {
        var copy = new byte[Gap];
        _memory.Read(0, copy);
        return copy;
    }

    /// <summary>The device wrote nothing but the used ring (and the driver's own available-ring writes).</summary>
    private void AssertOnlyRingsChanged(byte[] before)
    {
        var after = Snapshot();
        for (ulong i = 0; i < Gap; i++)
        {
            if (before[i] != after[i] && (i < _driver.AvailableRing || i >= _driver.End))
            {
                Assert.Fail($"Guest byte 0x{i:x} changed outside the rings.");
            }
        }
    }
}
