using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Tests;

public class X86InitialStateTests
{
    [Fact]
    public void Tables_MapFourGiBWithTwoMiBPages_AndTheGdtHasTheBootProtocolSelectors()
    {
        using var memory = GuestMemory.Create(1024 * 1024);

        X86InitialState.WriteTables(memory);

        Assert.Equal(0xA003UL, memory.Read<ulong>(X86InitialState.Pml4Address));
        Assert.Equal(0xE003UL, memory.Read<ulong>(X86InitialState.PdptAddress + (3 * 8)));
        Assert.Equal(0x83UL, memory.Read<ulong>(X86InitialState.PdBaseAddress));
        Assert.Equal(0xFFE0_0083UL, memory.Read<ulong>(X86InitialState.PdBaseAddress + (4 * 0x1000) - 8));
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, memory.Read<ulong>(X86InitialState.GdtAddress + X86InitialState.Code64Selector));
        Assert.Equal(0x00CF_9300_0000_FFFFUL, memory.Read<ulong>(X86InitialState.GdtAddress + X86InitialState.DataSelector));
    }

    [Fact]
    public void LongMode_AndProtectedMode32_SetTheEntryState()
    {
        var longMode = X86InitialState.LongMode(default);
        var pm32 = X86InitialState.ProtectedMode32(longMode);

        Assert.Equal((ushort)0x10, longMode.Cs.Selector);
        Assert.Equal(1, longMode.Cs.L);
        Assert.Equal(X86SystemRegisters.EferLma, longMode.Efer & X86SystemRegisters.EferLma);
        Assert.Equal(X86InitialState.Pml4Address, longMode.Cr3);
        Assert.Equal((ushort)0x08, pm32.Cs.Selector);
        Assert.Equal(1, pm32.Cs.Db);
        Assert.Equal(0UL, pm32.Cr0 & X86SystemRegisters.Cr0Pg);
        Assert.Equal(0UL, pm32.Efer);
        Assert.Equal((ushort)0x18, pm32.Ss.Selector);
        Assert.Equal((ushort)31, pm32.Gdt.Limit);
    }
}
