namespace KvmSharp.Emulator.Cpu;

/// <summary>General-purpose register numbers in their hardware encoding (ModRM.reg with REX.R).</summary>
public static class Gpr
{
    public const int Rax = 0;
    public const int Rcx = 1;
    public const int Rdx = 2;
    public const int Rbx = 3;
    public const int Rsp = 4;
    public const int Rbp = 5;
    public const int Rsi = 6;
    public const int Rdi = 7;
    public const int R8 = 8;
    public const int R9 = 9;
    public const int R10 = 10;
    public const int R11 = 11;
    public const int R12 = 12;
    public const int R13 = 13;
    public const int R14 = 14;
    public const int R15 = 15;
}
