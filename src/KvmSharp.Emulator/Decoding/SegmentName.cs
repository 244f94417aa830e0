namespace KvmSharp.Emulator.Decoding;

/// <summary>Segment registers in their hardware encoding order (ModRM.reg of MOV Sreg); named apart from Hypervisor.SegmentRegister (the register state).</summary>
public enum SegmentName : byte
{
    /// <summary>ES.</summary>
    Es,

    /// <summary>CS.</summary>
    Cs,

    /// <summary>SS.</summary>
    Ss,

    /// <summary>DS.</summary>
    Ds,

    /// <summary>FS.</summary>
    Fs,

    /// <summary>GS.</summary>
    Gs,

    /// <summary>No segment: used for "no override prefix".</summary>
    None = 0xFF,
}
