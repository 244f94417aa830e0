namespace KvmSharp.Emulator.Execution;

/// <summary>The MXCSR fields (Intel SDM Vol. 1, 10.2.3 "MXCSR Control and Status Register").</summary>
public static class Mxcsr
{
    /// <summary>IE: invalid operation (bit 0).</summary>
    public const uint InvalidFlag = 1 << 0;

    /// <summary>DE: denormal operand (bit 1).</summary>
    public const uint DenormalFlag = 1 << 1;

    /// <summary>ZE: divide by zero (bit 2).</summary>
    public const uint ZeroDivideFlag = 1 << 2;

    /// <summary>OE: numeric overflow (bit 3).</summary>
    public const uint OverflowFlag = 1 << 3;

    /// <summary>UE: numeric underflow (bit 4).</summary>
    public const uint UnderflowFlag = 1 << 4;

    /// <summary>PE: inexact result (bit 5).</summary>
    public const uint PrecisionFlag = 1 << 5;

    /// <summary>The six exception flags.</summary>
    public const uint ExceptionFlags = 0x3F;

    /// <summary>The exceptions detected before computing (SDM Vol. 1, 11.5.1): invalid, denormal, divide by zero.</summary>
    public const uint PreComputationFlags = InvalidFlag | DenormalFlag | ZeroDivideFlag;

    /// <summary>DAZ: denormal source operands are read as zeros (bit 6).</summary>
    public const uint DenormalsAreZero = 1 << 6;

    /// <summary>The shift from an exception flag to its mask bit (IM is bit 7 ... PM bit 12).</summary>
    public const int MaskShift = 7;

    /// <summary>IM ... PM: all six exception masks.</summary>
    public const uint ExceptionMasks = ExceptionFlags << MaskShift;

    /// <summary>The shift of the rounding-control field (bits 13-14).</summary>
    public const int RoundingShift = 13;

    /// <summary>FTZ: tiny results become zeros when underflow is masked (bit 15).</summary>
    public const uint FlushToZero = 1 << 15;

    /// <summary>The exception flags whose mask bit is clear.</summary>
    public static uint UnmaskedExceptions(uint mxcsr) => ~(mxcsr >> MaskShift) & ExceptionFlags;

    /// <summary>The rounding mode field: 0 nearest, 1 down, 2 up, 3 toward zero.</summary>
    public static uint Rounding(uint mxcsr) => (mxcsr >> RoundingShift) & 3;
}
