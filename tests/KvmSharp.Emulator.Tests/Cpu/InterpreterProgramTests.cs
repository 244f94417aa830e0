using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Execution;
using static KvmSharp.Emulator.Tests.Cpu.CpuFixture;

namespace KvmSharp.Emulator.Tests.Cpu;

// Programs assembled with GNU as (.intel_syntax noprefix), bytes pasted from objcopy -O binary.
public sealed class InterpreterProgramTests
{
    [Fact]
    public void SumLoop_AddsTenQwords()
    {
        //  0: mov rsi, 0x20000      48 c7 c6 00 00 02 00
        //  7: mov ecx, 10           b9 0a 00 00 00
        //  c: xor eax, eax          31 c0
        //  e: add rax, [rsi]        48 03 06
        // 11: add rsi, 8            48 83 c6 08
        // 15: dec ecx               ff c9
        // 17: jnz 0xe               75 f5
        // 19: hlt                   f4
        byte[] code = [0x48, 0xC7, 0xC6, 0x00, 0x00, 0x02, 0x00, 0xB9, 0x0A, 0x00, 0x00, 0x00, 0x31, 0xC0, 0x48, 0x03, 0x06, 0x48, 0x83, 0xC6, 0x08, 0xFF, 0xC9, 0x75, 0xF5, 0xF4];
        using var f = new CpuFixture(code);
        for (ulong i = 0; i < 10; i++)
        {
            f.Memory.Write(DataBase + (i * 8), (i + 1) * 0x1_0000_0001UL);
        }

        var result = f.Run();

        Assert.Equal(new RunResult(StepStatus.Halted, 3 + (10 * 4) + 1, default), result);
        Assert.Equal(55 * 0x1_0000_0001UL, f.State.Rax);
        Assert.Equal(DataBase + 80, f.State.Rsi);
        Assert.Equal(0UL, f.State.Rcx);
        Assert.Equal(CodeBase + 0x1A, f.State.Rip);
        // The last flag writer is DEC ECX to 0: ZF and PF set; CF kept from ADD RSI (clear).
        Assert.Equal(Flags.Reserved1 | Flags.ZF | Flags.PF, f.State.RFlags);
    }

    [Fact]
    public void RecursiveFactorial_UsesCallRetAndTheStack()
    {
        //  0: mov edi, 10           bf 0a 00 00 00
        //  5: call fact             e8 01 00 00 00
        //  a: hlt                   f4
        //  b: fact: cmp rdi, 1      48 83 ff 01
        //  f: jbe 0x20              76 0f
        // 11: push rdi              57
        // 12: dec rdi               48 ff cf
        // 15: call fact             e8 f1 ff ff ff
        // 1a: pop rdi               5f
        // 1b: imul rax, rdi         48 0f af c7
        // 1f: ret                   c3
        // 20: mov eax, 1            b8 01 00 00 00
        // 25: ret                   c3
        byte[] code = [0xBF, 0x0A, 0x00, 0x00, 0x00, 0xE8, 0x01, 0x00, 0x00, 0x00, 0xF4, 0x48, 0x83, 0xFF, 0x01, 0x76, 0x0F, 0x57, 0x48, 0xFF, 0xCF, 0xE8, 0xF1, 0xFF, 0xFF, 0xFF, 0x5F, 0x48, 0x0F, 0xAF, 0xC7, 0xC3, 0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        using var f = new CpuFixture(code);

        var result = f.Run();

        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(3_628_800UL, f.State.Rax);
        Assert.Equal(10UL, f.State.Rdi);
        Assert.Equal(StackTop, f.State.Rsp);
        Assert.Equal(CodeBase + 0xB, f.State.Rip);
        // The deepest frame: return address into fact (0x1a) below the saved RDI = 2 and a return to main (0xa).
        Assert.Equal(CodeBase + 0xA, f.Memory.Read<ulong>(StackTop - 8));
        Assert.Equal(CodeBase + 0x1A, f.Memory.Read<ulong>(StackTop - 8 - (8 * 2 * 9)));
    }

    [Fact]
    public void ByteCopyLoop_AndPageCrossingQwordAccesses()
    {
        //  0: mov rsi, 0x20f80      48 c7 c6 80 0f 02 00
        //  7: mov rdi, 0x21fc0      48 c7 c7 c0 1f 02 00
        //  e: mov ecx, 200          b9 c8 00 00 00
        // 13: mov al, [rsi]         8a 06
        // 15: mov [rdi], al         88 07
        // 17: inc rsi               48 ff c6
        // 1a: inc rdi               48 ff c7
        // 1d: loop 0x13             e2 f4
        // 1f: mov rdx, 0x20ffc      48 c7 c2 fc 0f 02 00
        // 26: mov rbx, [rdx]        48 8b 1a
        // 29: mov [rdx+0x2001], rbx 48 89 9a 01 20 00 00
        // 30: hlt                   f4
        byte[] code = [0x48, 0xC7, 0xC6, 0x80, 0x0F, 0x02, 0x00, 0x48, 0xC7, 0xC7, 0xC0, 0x1F, 0x02, 0x00, 0xB9, 0xC8, 0x00, 0x00, 0x00, 0x8A, 0x06, 0x88, 0x07, 0x48, 0xFF, 0xC6, 0x48, 0xFF, 0xC7, 0xE2, 0xF4, 0x48, 0xC7, 0xC2, 0xFC, 0x0F, 0x02, 0x00, 0x48, 0x8B, 0x1A, 0x48, 0x89, 0x9A, 0x01, 0x20, 0x00, 0x00, 0xF4];
        using var f = new CpuFixture(code);
        byte[] source = new byte[200];
        for (int i = 0; i < source.Length; i++)
        {
            source[i] = (byte)((i * 7) + 1);
        }

        f.Memory.Write(0x20F80, (ReadOnlySpan<byte>)source);

        var result = f.Run();

        Assert.Equal(StepStatus.Halted, result.Status);
        byte[] copied = new byte[200];
        f.Memory.Read(0x21FC0, copied);
        Assert.Equal(source, copied);
        Assert.Equal(0UL, f.State.Rcx);
        ulong expected = BitConverter.ToUInt64(source, 0x20FFC - 0x20F80);
        Assert.Equal(expected, f.State.Rbx);
        Assert.Equal(expected, f.Memory.Read<ulong>(0x22FFD)); // split 3 + 5 bytes across 0x23000
    }

    [Fact]
    public void RegisterWidths_ZeroExtendMergeAndHighBytes_AndSubFlags()
    {
        //  0: mov rax, -1           48 c7 c0 ff ff ff ff
        //  7: mov eax, 0x12345678   b8 78 56 34 12
        //  c: mov rbx, -1           48 c7 c3 ff ff ff ff
        // 13: mov bx, 0x1234        66 bb 34 12
        // 17: mov rcx, -1           48 c7 c1 ff ff ff ff
        // 1e: mov cl, 0x56          b1 56
        // 20: mov ch, 0x78          b5 78
        // 22: mov rdx, 0            48 c7 c2 00 00 00 00
        // 29: mov r8b, 0x9a         41 b0 9a
        // 2c: mov dh, 0xbc          b6 bc
        // 2e: mov sil, 0x7f         40 b6 7f
        // 31: movzx edi, ch         0f b6 fd
        // 34: movsx r10, cl         4c 0f be d1
        // 38: mov r11d, -2          41 bb fe ff ff ff
        // 3e: movsxd r12, r11d      4d 63 e3
        // 41: movabs r13, 0x1122334455667788  49 bd ...
        // 4b: bswap r13             49 0f cd
        // 4e: mov r14, 5            49 c7 c6 05 00 00 00
        // 55: sub r14, 7            49 83 ee 07
        // 59: hlt                   f4
        byte[] code = [0x48, 0xC7, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0xB8, 0x78, 0x56, 0x34, 0x12, 0x48, 0xC7, 0xC3, 0xFF, 0xFF, 0xFF, 0xFF, 0x66, 0xBB, 0x34, 0x12, 0x48, 0xC7, 0xC1, 0xFF, 0xFF, 0xFF, 0xFF, 0xB1, 0x56, 0xB5, 0x78, 0x48, 0xC7, 0xC2, 0x00, 0x00, 0x00, 0x00, 0x41, 0xB0, 0x9A, 0xB6, 0xBC, 0x40, 0xB6, 0x7F, 0x0F, 0xB6, 0xFD, 0x4C, 0x0F, 0xBE, 0xD1, 0x41, 0xBB, 0xFE, 0xFF, 0xFF, 0xFF, 0x4D, 0x63, 0xE3, 0x49, 0xBD, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x49, 0x0F, 0xCD, 0x49, 0xC7, 0xC6, 0x05, 0x00, 0x00, 0x00, 0x49, 0x83, 0xEE, 0x07, 0xF4];
        using var f = new CpuFixture(code);

        Assert.Equal(StepStatus.Halted, f.Run().Status);

        Assert.Equal(0x12345678UL, f.State.Rax);
        Assert.Equal(0xFFFF_FFFF_FFFF_1234UL, f.State.Rbx);
        Assert.Equal(0xFFFF_FFFF_FFFF_7856UL, f.State.Rcx);
        Assert.Equal(0xBC00UL, f.State.Rdx);
        Assert.Equal(0x9AUL, f.State[Gpr.R8]);
        Assert.Equal(0x7FUL, f.State.Rsi);
        Assert.Equal(0x78UL, f.State.Rdi);
        Assert.Equal(0x56UL, f.State[Gpr.R10]);
        Assert.Equal(0xFFFF_FFFEUL, f.State[Gpr.R11]);
        Assert.Equal(0xFFFF_FFFF_FFFF_FFFEUL, f.State[Gpr.R12]);
        Assert.Equal(0x8877_6655_4433_2211UL, f.State[Gpr.R13]);
        Assert.Equal(0xFFFF_FFFF_FFFF_FFFEUL, f.State[Gpr.R14]);
        Assert.Equal(Flags.Reserved1 | Flags.CF | Flags.AF | Flags.SF, f.State.RFlags);
    }

    [Fact]
    public void MixedInstructions_ProduceExactRegisters()
    {
        //  0: mov rax, -100         48 c7 c0 9c ff ff ff
        //  7: cqo                   48 99
        //  9: mov rcx, 7            48 c7 c1 07 00 00 00
        // 10: idiv rcx              48 f7 f9
        // 13: mov r8, rax           49 89 c0
        // 16: mov r9, rdx           49 89 d1
        // 19: mov eax, 0x80000000   b8 00 00 00 80
        // 1e: cdq                   99
        // 1f: mov r10, rdx          49 89 d2
        // 22: mov rbx, 0xf0         48 c7 c3 f0 00 00 00
        // 29: bt rbx, 4             48 0f ba e3 04
        // 2e: setc r11b             41 0f 92 c3
        // 32: btr rbx, 7            48 0f ba f3 07
        // 37: bts rbx, 0            48 0f ba eb 00
        // 3c: btc rbx, 1            48 0f ba fb 01
        // 41: mov r12, 3            49 c7 c4 03 00 00 00
        // 48: mov r13, 9            49 c7 c5 09 00 00 00
        // 4f: cmp r12, r13          4d 39 ec
        // 52: cmovl r12, r13        4d 0f 4c e5
        // 56: mov r14, -1           49 c7 c6 ff ff ff ff
        // 5d: mov r15d, 1           41 bf 01 00 00 00
        // 63: cmp r15d, 2           41 83 ff 02
        // 67: cmovg r14d, r15d      45 0f 4f f7   (false, but a 32-bit CMOV still zero-extends)
        // 6b: xchg r12, r13         4d 87 ec
        // 6e: shl r15, 63           49 c1 e7 3f
        // 72: sar r15, 3            49 c1 ff 03
        // 76: rol rbx, 4            48 c1 c3 04
        // 7a: mov esi, 0x1234       be 34 12 00 00
        // 7f: imul esi, esi, -3     6b f6 fd
        // 82: mov edi, 10           bf 0a 00 00 00
        // 87: movabs rax, 1 << 32   48 b8 00 00 00 00 01 00 00 00
        // 91: mul rax               48 f7 e0
        // 94: lea rbp, [rdi+rdi*4+3] 48 8d 6c bf 03
        // 99: push 0x55             6a 55
        // 9b: push -2               6a fe
        // 9d: pop rcx               59
        // 9e: pop rdx               5a
        // 9f: test rdx, rdx         48 85 d2
        // a2: hlt                   f4
        byte[] code = [0x48, 0xC7, 0xC0, 0x9C, 0xFF, 0xFF, 0xFF, 0x48, 0x99, 0x48, 0xC7, 0xC1, 0x07, 0x00, 0x00, 0x00, 0x48, 0xF7, 0xF9, 0x49, 0x89, 0xC0, 0x49, 0x89, 0xD1, 0xB8, 0x00, 0x00, 0x00, 0x80, 0x99, 0x49, 0x89, 0xD2, 0x48, 0xC7, 0xC3, 0xF0, 0x00, 0x00, 0x00, 0x48, 0x0F, 0xBA, 0xE3, 0x04, 0x41, 0x0F, 0x92, 0xC3, 0x48, 0x0F, 0xBA, 0xF3, 0x07, 0x48, 0x0F, 0xBA, 0xEB, 0x00, 0x48, 0x0F, 0xBA, 0xFB, 0x01, 0x49, 0xC7, 0xC4, 0x03, 0x00, 0x00, 0x00, 0x49, 0xC7, 0xC5, 0x09, 0x00, 0x00, 0x00, 0x4D, 0x39, 0xEC, 0x4D, 0x0F, 0x4C, 0xE5, 0x49, 0xC7, 0xC6, 0xFF, 0xFF, 0xFF, 0xFF, 0x41, 0xBF, 0x01, 0x00, 0x00, 0x00, 0x41, 0x83, 0xFF, 0x02, 0x45, 0x0F, 0x4F, 0xF7, 0x4D, 0x87, 0xEC, 0x49, 0xC1, 0xE7, 0x3F, 0x49, 0xC1, 0xFF, 0x03, 0x48, 0xC1, 0xC3, 0x04, 0xBE, 0x34, 0x12, 0x00, 0x00, 0x6B, 0xF6, 0xFD, 0xBF, 0x0A, 0x00, 0x00, 0x00, 0x48, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x48, 0xF7, 0xE0, 0x48, 0x8D, 0x6C, 0xBF, 0x03, 0x6A, 0x55, 0x6A, 0xFE, 0x59, 0x5A, 0x48, 0x85, 0xD2, 0xF4];
        using var f = new CpuFixture(code);

        Assert.Equal(StepStatus.Halted, f.Run().Status);

        Assert.Equal(unchecked((ulong)-14L), f.State[Gpr.R8]);
        Assert.Equal(unchecked((ulong)-2L), f.State[Gpr.R9]);
        Assert.Equal(0xFFFF_FFFFUL, f.State[Gpr.R10]);
        Assert.Equal(1UL, f.State[Gpr.R11]);
        Assert.Equal(0x730UL, f.State.Rbx);
        Assert.Equal(9UL, f.State[Gpr.R12]);
        Assert.Equal(9UL, f.State[Gpr.R13]);
        Assert.Equal(0xFFFF_FFFFUL, f.State[Gpr.R14]);
        Assert.Equal(0xF000_0000_0000_0000UL, f.State[Gpr.R15]);
        Assert.Equal(0xFFFF_C964UL, f.State.Rsi);
        Assert.Equal(0UL, f.State.Rax);
        Assert.Equal(53UL, f.State.Rbp);
        Assert.Equal(0xFFFF_FFFF_FFFF_FFFEUL, f.State.Rcx);
        Assert.Equal(0x55UL, f.State.Rdx);
        Assert.Equal(StackTop, f.State.Rsp);
        Assert.Equal(0x55UL, f.Memory.Read<ulong>(StackTop - 8));
        Assert.Equal(Flags.Reserved1 | Flags.PF, f.State.RFlags);
    }
}
