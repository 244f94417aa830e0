using System.Buffers.Binary;

namespace KvmSharp.Cli.Tests;

/// <summary>How a run ends when the guest reboots or triple-faults (docs/machine.md, "How a run ends").</summary>
public class RunEndingTests
{
    private const uint LoadAddress = 0x10_0000;
    private const int HeaderSize = 32;

    /// <summary>A multiboot image with the a.out kludge: header at offset 0, 32-bit code right after it.</summary>
    internal static byte[] MultibootImage(ReadOnlySpan<byte> code)
    {
        var image = new byte[HeaderSize + code.Length];
        const uint Magic = 0x1BADB002;
        const uint Flags = 1u << 16; // addresses in the header
        Span<uint> h =
        [
            Magic, Flags, unchecked(0u - Magic - Flags),
            LoadAddress,              // header_addr
            LoadAddress,              // load_addr
            0,                        // load_end_addr: the whole file
            0,                        // bss_end_addr: no BSS
            LoadAddress + HeaderSize, // entry_addr
        ];
        for (int i = 0; i < h.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(i * 4), h[i]);
        }

        code.CopyTo(image.AsSpan(HeaderSize));
        return image;
    }

    // Guests/echo32.S: echo COM1 input to COM1 output by polling LSR; 'q' writes 0 to isa-debug-exit.
    internal static readonly byte[] EchoGuest =
    [
        0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xf7, 0x66, 0xba, 0xf8, 0x03, 0xec, 0x3c, 0x71, 0x74, 0x14,
        0x88, 0xc3, 0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x20, 0x74, 0xf7, 0x66, 0xba, 0xf8, 0x03, 0x88, 0xd8, 0xee,
        0xeb, 0xda, 0x31, 0xc0, 0xe7, 0xf4, 0xf4,
    ];

    internal static string WriteImage(ReadOnlySpan<byte> code)
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.mb");
        File.WriteAllBytes(kernel, MultibootImage(code));
        return kernel;
    }

    private static CliResult Boot(ReadOnlySpan<byte> code)
    {
        Assert.SkipUnless(File.Exists("/dev/kvm"), "/dev/kvm is absent: this test runs guests on KVM.");
        string kernel = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.mb");
        File.WriteAllBytes(kernel, MultibootImage(code));
        try
        {
            return CliRunner.Run("run", "--kernel", kernel, "--memory", "64M", "--accel", "kvm", "--console", "file:/dev/null");
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void I8042Reset_EndsTheRunWithStatus0()
    {
        // mov $0xFE,%al; out %al,$0x64; 1: hlt; jmp 1b
        var r = Boot([0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd]);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(string.Empty, r.Error);
    }

    [Fact]
    public void TripleFault_EndsTheRunWithStatus3()
    {
        // ud2 with the reset IDT (base 0, all-zero gates): #UD -> #NP -> #DF -> shutdown
        var r = Boot([0x0f, 0x0b]);

        Assert.Equal(3, r.ExitCode);
        Assert.Equal("kvmsharp: The guest shut down (triple fault).\n", r.Error);
    }

    [Fact]
    public void DebugExit_StatusIsValueShiftedOrOne()
    {
        // mov $0x21,%eax; out %eax,$0xf4 -> (0x21 << 1) | 1 = 0x43
        var r = Boot([0xb8, 0x21, 0x00, 0x00, 0x00, 0xe7, 0xf4, 0xf4]);

        Assert.Equal(0x43, r.ExitCode);
    }

    [Fact]
    public void BootMarker_AtTheMmioAlias_IsReportedByStats()
    {
        Assert.SkipUnless(File.Exists("/dev/kvm"), "/dev/kvm is absent: this test runs guests on KVM.");
        // movb $123,0xD0000000 (what the default guest's /init does with busybox devmem); xor %eax,%eax; out %eax,$0xf4
        string kernel = WriteImage([0xc6, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x7b, 0x31, 0xc0, 0xe7, 0xf4, 0xf4]);
        try
        {
            var r = CliRunner.Run("run", "--kernel", kernel, "--memory", "64M", "--accel", "kvm", "--console", "file:/dev/null", "--stats");

            Assert.Equal(1, r.ExitCode);
            Assert.Matches(@"\nguest boot time \d+\.\d ms \(from VMM start to the boot timer marker\)\n", r.Output);
            Assert.Contains("MmioWrite                1\n", r.Output);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
