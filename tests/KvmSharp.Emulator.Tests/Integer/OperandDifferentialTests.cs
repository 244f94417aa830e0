using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Tests.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// Operands for one case: A is the destination (register or memory), B the source, C the accumulator (or the
/// high half of a CMPXCHG8B/16B comparand), D a count or second memory half; <see cref="Equal"/> makes the
/// CMPXCHG comparands match the destination.
/// </summary>
public sealed record OperandCase(ulong A, ulong B, ulong C, ulong D, bool Equal, ulong FlagsIn, int Seed)
{
    public override string ToString() =>
        FormattableString.Invariant($"A=0x{A:X} B=0x{B:X} C=0x{C:X} D=0x{D:X} equal={Equal} flags=0x{FlagsIn:X} seed={Seed}");
}

/// <summary>
/// The non-string instructions of this family, run natively and in the interpreter from the same registers and
/// memory (<see cref="Differential"/>): XADD, CMPXCHG, CMPXCHG8B/16B (register and memory forms, LOCK, equal and
/// unequal compares), BSF/BSR and their F3 (TZCNT/LZCNT) encodings (which must equal the host's BSF/BSR: we do not
/// advertise BMI1/ABM), POPCNT, SHLD/SHRD (imm8 and CL, register and memory), XLAT, LAHF/SAHF, CLD/STD,
/// ENTER/LEAVE; in compatibility mode also PUSHA/POPA, BOUND, SALC and the BCD adjustments. Each form runs every
/// pair of edge operands, then FsCheck-generated operands (edge values, small values, random 64-bit values).
/// </summary>
public sealed class OperandDifferentialTests : IDisposable
{
    private readonly Differential _long = new(longMode: true);

    public static TheoryData<string> LongModeForms => OperandForms.Names(compat: false);

    [Theory]
    [MemberData(nameof(LongModeForms))]
    public void LongMode_MatchesTheHost(string name) => OperandForms.Run(_long, name);

    public void Dispose() => _long.Dispose();
}

/// <summary>The 32-bit forms of <see cref="OperandDifferentialTests"/>, in compatibility mode (a class of its own so the two run in parallel).</summary>
public sealed class CompatibilityOperandDifferentialTests : IDisposable
{
    private readonly Differential _compat = new(longMode: false);

    public static TheoryData<string> CompatibilityModeForms => OperandForms.Names(compat: true);

    [Theory]
    [MemberData(nameof(CompatibilityModeForms))]
    public void CompatibilityMode_MatchesTheHost(string name)
    {
        Assert.SkipUnless(NativeRunner.CompatibilityModeAvailable, "The kernel has no 32-bit user code segment (IA-32 emulation is off).");
        OperandForms.Run(_compat, name);
    }

    public void Dispose() => _compat.Dispose();
}

/// <summary>The forms, their register and memory setups, and the case generation.</summary>
internal static class OperandForms
{
    private static readonly ulong[] Edges =
    [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
    ];

    private static readonly Dictionary<string, Form> Forms = BuildForms();

    [ThreadStatic]
    private static byte[]? _buffer;

    /// <summary>How a form's registers and memory are set up from an <see cref="OperandCase"/>.</summary>
    internal enum Setup
    {
        /// <summary>RDX = A (destination), RCX = B (source), RAX = C or A (equal), RBX -&gt; memory holding A.</summary>
        Binary,

        /// <summary>RDX = A (destination), RAX = B (source), RCX = D (count), RBX -&gt; memory holding A.</summary>
        DoubleShift,

        /// <summary>RSI -&gt; 16-byte aligned memory A:D; RDX:RAX = C:B or A:D (equal); RCX:RBX = random.</summary>
        CompareExchangeDouble,

        /// <summary>RBX -&gt; random table, AL random.</summary>
        Table,

        /// <summary>RBP a little above RSP in the stack area (ENTER/LEAVE/PUSHA/POPA).</summary>
        Frame,

        /// <summary>EBX -&gt; bounds (A, D as signed), ECX = an index within them.</summary>
        Bound,
    }

    private static byte[] Buffer => _buffer ??= Differential.NewWindow();

    public static void Run(Differential machine, string name)
    {
        var form = Forms[name];
        bool doubleShift16 = form.Setup == Setup.DoubleShift && form.Code[0] == 0x66;
        Assert.SkipWhen(
            !HostCpu.IsIntel && doubleShift16 && form.Code.Length == 5 && (form.Code[4] & 31) > 16,
            $"A 16-bit double shift by more than 16 leaves result and flags undefined; this {HostCpu.Vendor} host differs from the Intel model (HostCpu).");
        // Every pair of edge operands where operands matter; frames and tables depend only on the random registers.
        bool operands = form.Setup is not (Setup.Frame or Setup.Table);
        int seed = form.Name.Length * 7919;
        foreach (ulong a in operands ? Edges : Edges[..4])
        {
            foreach (ulong b in operands ? Edges : Edges[..4])
            {
                seed++;
                Check(machine, form, new OperandCase(a, b, b ^ a, (ulong)seed * 0x9E37_79B9, (seed & 1) == 0, (ulong)seed * 0x45 & (Flags.Arithmetic | Flags.DF), seed));
            }
        }

        var random64 =
            from high in Gen.Choose(0, 0xFFFF)
            from mid in Gen.Choose(0, 0xFFFF)
            from low in Gen.Choose(0, int.MaxValue)
            select ((ulong)high << 48) | ((ulong)mid << 32) | (uint)low | ((ulong)(high & 1) << 31);
        var operand = Gen.Frequency((3, Gen.Elements(Edges)), (2, Gen.Choose(0, 300).Select(v => (ulong)v)), (5, random64));
        var cases =
            from a in operand
            from b in operand
            from c in operand
            from d in operand
            from equal in Gen.Elements(false, true)
            from flags in Gen.Choose(0, 0xFFF)
            from caseSeed in Gen.Choose(0, int.MaxValue)
            select new OperandCase(a, b, c, d, equal, (ulong)flags & (Flags.Arithmetic | Flags.DF), caseSeed);
        Prop.ForAll(cases.ToArbitrary(), c => Check(machine, form, c)).Check(Config.QuickThrowOnFailure.WithMaxTest(operands ? 40 : 20));
    }

    private static void Check(Differential machine, Form form, OperandCase c)
    {
        var random = new Random(c.Seed);
        var registers = Differential.RandomRegisters(random, machine.LongMode);
        var window = Differential.RandomWindow(random, Buffer);
        ulong width = machine.LongMode ? ulong.MaxValue : 0xFFFF_FFFF;
        registers.Flags = Flags.Reserved1 | c.FlagsIn;
        switch (form.Setup)
        {
            case Setup.Binary:
            {
                // A LOCKed access that splits a cache line makes the host kernel trap and throttle (split-lock
                // detection), so locked forms get aligned operands.
                int offset = form.Code[0] == 0xF0 ? random.Next(0, NativeMachine.StackAreaOffset / 8) * 8 : PickOffset(random, 8);
                registers.Gpr[2] = c.A & width;
                registers.Gpr[1] = c.B & width;
                registers.Gpr[0] = (c.Equal ? c.A : c.C) & width;
                registers.Gpr[3] = Differential.Window + (ulong)offset;
                BinaryPrimitives.WriteUInt64LittleEndian(window.AsSpan(offset), c.A);
                break;
            }

            case Setup.DoubleShift:
            {
                int offset = PickOffset(random, 8);
                registers.Gpr[2] = c.A & width;
                registers.Gpr[0] = c.B & width;
                registers.Gpr[1] = c.D & width;
                if (!HostCpu.IsIntel && form.Code[0] == 0x66 && (registers.Gpr[1] & 31) > 16)
                {
                    registers.Gpr[1] &= ~15UL; // a count of 16: over 16 a 16-bit double shift is undefined (HostCpu)
                }

                registers.Gpr[3] = Differential.Window + (ulong)offset;
                BinaryPrimitives.WriteUInt64LittleEndian(window.AsSpan(offset), c.A);
                break;
            }

            case Setup.CompareExchangeDouble:
            {
                int offset = random.Next(0, NativeMachine.StackAreaOffset / 16) * 16;
                registers.Gpr[6] = Differential.Window + (ulong)offset;
                BinaryPrimitives.WriteUInt64LittleEndian(window.AsSpan(offset), c.A);
                BinaryPrimitives.WriteUInt64LittleEndian(window.AsSpan(offset + 8), c.D);
                bool wide = form.Code.Contains((byte)0x48);
                // Equal: the comparand is the memory (halves of 4 or 8 bytes); else C:B, which may still match in part.
                ulong low = c.Equal ? (wide ? c.A : c.A & 0xFFFF_FFFF) : c.B;
                ulong high = c.Equal ? (wide ? c.D : c.A >> 32) : c.C;
                registers.Gpr[0] = low & width;
                registers.Gpr[2] = high & width;
                break;
            }

            case Setup.Table:
                // Only a 67-prefixed XLAT may have garbage above EBX.
                ulong garbage = form.Code[0] == 0x67 ? (ulong)random.NextInt64() << 32 : 0;
                registers.Gpr[3] = garbage | (Differential.Window + (ulong)PickOffset(random, 256));
                break;

            case Setup.Frame:
                registers.Gpr[5] = Differential.StackPointer - 1024 + (ulong)random.Next(1024, 2048);
                if (form.Code.Length >= 4 && form.Code[^4] == 0xC8 && (form.Code[^1] & 0x1F) <= 1)
                {
                    // ENTER with nesting level 0 or 1 never reads through rBP: any value goes, upper bits included.
                    registers.Gpr[5] = (ulong)random.NextInt64() & width;
                }

                if (form.Name.StartsWith("popa", StringComparison.Ordinal) || form.Name.StartsWith("leave", StringComparison.Ordinal))
                {
                    registers.Gpr[4] = Differential.StackPointer - (ulong)random.Next(0, 64);
                }

                break;

            case Setup.Bound:
            {
                int offset = PickOffset(random, 8);
                int size = form.Code[0] == 0x66 ? 2 : 4;
                long lower = Alu.SignExtend(c.A, size);
                long upper = Alu.SignExtend(c.D, size);
                if (lower > upper)
                {
                    (lower, upper) = (upper, lower);
                }

                long index = lower + (long)(c.B % (ulong)(upper - lower + 1));
                registers.Gpr[3] = Differential.Window + (ulong)offset;
                registers.Gpr[1] = (registers.Gpr[1] & ~Alu.SizeMask(size)) | ((ulong)index & Alu.SizeMask(size));
                if (size == 2)
                {
                    BinaryPrimitives.WriteInt16LittleEndian(window.AsSpan(offset), (short)lower);
                    BinaryPrimitives.WriteInt16LittleEndian(window.AsSpan(offset + 2), (short)upper);
                }
                else
                {
                    BinaryPrimitives.WriteInt32LittleEndian(window.AsSpan(offset), (int)lower);
                    BinaryPrimitives.WriteInt32LittleEndian(window.AsSpan(offset + 4), (int)upper);
                }

                break;
            }
        }

        string? failure = machine.Compare(form.Code, registers, window, form.HostCode, HostCpu.UndefinedFlags(Mnemonic(form.Name)));
        Assert.True(failure == null, $"{form.Name} {c}: {failure}");
    }

    /// <summary>"shld" from "64: lock shld [rbx], ax, 11": the name without its mode and prefixes, up to the operands.</summary>
    private static string Mnemonic(string name)
    {
        string text = name[(name.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        foreach (string word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (word is not ("lock" or "rep" or "66" or "67" or "f2" or "f3" or "a32" or "rex.w"))
            {
                return word.TrimEnd(',');
            }
        }

        return text;
    }

    /// <summary>A data offset: mostly random, sometimes a few bytes before a page boundary (accesses that straddle it).</summary>
    private static int PickOffset(Random random, int size)
    {
        if (random.Next(4) == 0)
        {
            return (random.Next(1, (NativeMachine.StackAreaOffset / 4096) - 1) * 4096) - random.Next(1, size);
        }

        return random.Next(0, NativeMachine.StackAreaOffset - size);
    }

    public static TheoryData<string> Names(bool compat)
    {
        var data = new TheoryData<string>();
        foreach (var form in Forms.Values)
        {
            if (form.Compat == compat)
            {
                data.Add(form.Name);
            }
        }

        return data;
    }

    private static Dictionary<string, Form> BuildForms()
    {
        var forms = new Dictionary<string, Form>();
        void Add(string name, string hex, Setup setup, string? hostHex = null, bool compat = false) =>
            forms.Add(name, new Form(name, Convert.FromHexString(hex), hostHex == null ? null : Convert.FromHexString(hostHex), setup, compat));

        foreach (bool compat in new[] { false, true })
        {
            string m = compat ? "32: " : "64: ";
            Add(m + "xadd dh, cl", "0FC0CE", Setup.Binary, compat: compat);
            Add(m + "xadd [rbx], cl", "0FC00B", Setup.Binary, compat: compat);
            Add(m + "xadd dx, cx", "660FC1CA", Setup.Binary, compat: compat);
            Add(m + "xadd edx, ecx", "0FC1CA", Setup.Binary, compat: compat);
            Add(m + "xadd ecx, ecx", "0FC1C9", Setup.Binary, compat: compat);
            Add(m + "xadd [rbx], cx", "660FC10B", Setup.Binary, compat: compat);
            Add(m + "lock xadd [rbx], ecx", "F00FC10B", Setup.Binary, compat: compat);
            Add(m + "cmpxchg dh, cl", "0FB0CE", Setup.Binary, compat: compat);
            Add(m + "cmpxchg ah, cl", "0FB0CC", Setup.Binary, compat: compat);
            Add(m + "cmpxchg [rbx], cl", "0FB00B", Setup.Binary, compat: compat);
            Add(m + "cmpxchg dx, cx", "660FB1CA", Setup.Binary, compat: compat);
            Add(m + "cmpxchg edx, ecx", "0FB1CA", Setup.Binary, compat: compat);
            Add(m + "cmpxchg eax, ecx", "0FB1C8", Setup.Binary, compat: compat);
            Add(m + "cmpxchg [rbx], cx", "660FB10B", Setup.Binary, compat: compat);
            Add(m + "lock cmpxchg [rbx], ecx", "F00FB10B", Setup.Binary, compat: compat);
            Add(m + "cmpxchg8b [rsi]", "0FC70E", Setup.CompareExchangeDouble, compat: compat);
            Add(m + "lock cmpxchg8b [rsi]", "F00FC70E", Setup.CompareExchangeDouble, compat: compat);
            Add(m + "bsf edx, ecx", "0FBCD1", Setup.Binary, compat: compat);
            Add(m + "bsr dx, cx", "660FBDD1", Setup.Binary, compat: compat);
            Add(m + "tzcnt edx, ecx (as bsf)", "F30FBCD1", Setup.Binary, "0FBCD1", compat);
            Add(m + "lzcnt dx, cx (as bsr)", "66F30FBDD1", Setup.Binary, "660FBDD1", compat);
            Add(m + "popcnt edx, ecx", "F30FB8D1", Setup.Binary, compat: compat);
            Add(m + "popcnt dx, [rbx]", "66F30FB813", Setup.Binary, compat: compat);
            Add(m + "shld edx, eax, cl", "0FA5C2", Setup.DoubleShift, compat: compat);
            Add(m + "shrd dx, ax, cl", "660FADC2", Setup.DoubleShift, compat: compat);
            Add(m + "shrd [rbx], eax, cl", "0FAD03", Setup.DoubleShift, compat: compat);
            Add(m + "xlat", "D7", Setup.Table, compat: compat);
            Add(m + "lahf", "9F", Setup.Binary, compat: compat);
            Add(m + "sahf", "9E", Setup.Binary, compat: compat);
            Add(m + "cld", "FC", Setup.Binary, compat: compat);
            Add(m + "std", "FD", Setup.Binary, compat: compat);
            Add(m + "leave", "C9", Setup.Frame, compat: compat);
            Add(m + "leave16", "66C9", Setup.Frame, compat: compat);
            foreach (int level in new[] { 0, 1, 2, 3, 7, 31, 32, 33, 255 })
            {
                foreach (int allocation in new[] { 0, 0x18, 0x1235 })
                {
                    string immediates = FormattableString.Invariant($"{allocation & 0xFF:X2}{allocation >> 8:X2}{level:X2}");
                    Add(m + FormattableString.Invariant($"enter 0x{allocation:X}, {level}"), "C8" + immediates, Setup.Frame, compat: compat);
                    Add(m + FormattableString.Invariant($"enter16 0x{allocation:X}, {level}"), "66C8" + immediates, Setup.Frame, compat: compat);
                }
            }

            foreach (int count in new[] { 0, 1, 15, 16, 17, 31, 32, 63, 200 })
            {
                string imm = FormattableString.Invariant($"{count:X2}");
                Add(m + "shld edx, eax, " + imm, "0FA4C2" + imm, Setup.DoubleShift, compat: compat);
                Add(m + "shrd edx, eax, " + imm, "0FACC2" + imm, Setup.DoubleShift, compat: compat);
                Add(m + "shld dx, ax, " + imm, "660FA4C2" + imm, Setup.DoubleShift, compat: compat);
                Add(m + "shrd [rbx], ax, " + imm, "660FAC03" + imm, Setup.DoubleShift, compat: compat);
            }
        }

        // 64-bit only: REX forms.
        Add("64: xadd sil, cl", "400FC0CE", Setup.Binary);
        Add("64: xadd rdx, rcx", "480FC1CA", Setup.Binary);
        Add("64: xadd rcx, rcx", "480FC1C9", Setup.Binary);
        Add("64: lock xadd [rbx], rcx", "F0480FC10B", Setup.Binary);
        Add("64: cmpxchg rdx, rcx", "480FB1CA", Setup.Binary);
        Add("64: cmpxchg [rbx], rcx", "480FB10B", Setup.Binary);
        Add("64: cmpxchg r9b, r10b", "450FB0D1", Setup.Binary);
        Add("64: cmpxchg16b [rsi]", "480FC70E", Setup.CompareExchangeDouble);
        Add("64: lock cmpxchg16b [rsi]", "F0480FC70E", Setup.CompareExchangeDouble);
        Add("64: 66 cmpxchg8b [rsi]", "660FC70E", Setup.CompareExchangeDouble);
        Add("64: bsf rdx, rcx", "480FBCD1", Setup.Binary);
        Add("64: bsr rdx, [rbx]", "480FBD13", Setup.Binary);
        Add("64: bsr edx, [rbx]", "0FBD13", Setup.Binary);
        Add("64: tzcnt rdx, [rbx] (as bsf)", "F3480FBC13", Setup.Binary, "480FBC13");
        Add("64: lzcnt edx, ecx (as bsr)", "F30FBDD1", Setup.Binary, "0FBDD1");
        Add("64: popcnt rdx, rcx", "F3480FB8D1", Setup.Binary);
        Add("64: shld rdx, rax, cl", "480FA5C2", Setup.DoubleShift);
        Add("64: shrd [rbx], rax, cl", "480FAD03", Setup.DoubleShift);
        Add("64: shld rdx, rax, 63", "480FA4C23F", Setup.DoubleShift);
        Add("64: rex.w xlat", "48D7", Setup.Table);
        Add("64: a32 xlat", "67D7", Setup.Table);

        // Outside 64-bit mode only.
        Add("32: pusha", "60", Setup.Frame, compat: true);
        Add("32: pusha16", "6660", Setup.Frame, compat: true);
        Add("32: popa", "61", Setup.Frame, compat: true);
        Add("32: popa16", "6661", Setup.Frame, compat: true);
        Add("32: bound ecx, [ebx]", "620B", Setup.Bound, compat: true);
        Add("32: bound cx, [ebx]", "66620B", Setup.Bound, compat: true);
        Add("32: salc", "D6", Setup.Binary, compat: true);
        Add("32: daa", "27", Setup.Binary, compat: true);
        Add("32: das", "2F", Setup.Binary, compat: true);
        Add("32: aaa", "37", Setup.Binary, compat: true);
        Add("32: aas", "3F", Setup.Binary, compat: true);
        foreach (string imm in new[] { "0A", "01", "07", "10", "FF" })
        {
            Add("32: aam " + imm, "D4" + imm, Setup.Binary, compat: true);
            Add("32: aad " + imm, "D5" + imm, Setup.Binary, compat: true);
        }

        Add("32: aad 00", "D500", Setup.Binary, compat: true);
        return forms;
    }

    private sealed record Form(string Name, byte[] Code, byte[]? HostCode, Setup Setup, bool Compat);
}
