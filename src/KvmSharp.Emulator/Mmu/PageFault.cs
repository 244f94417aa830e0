namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// A failed translation. For <see cref="TranslationStatus.PageFault"/> the CPU loads <see cref="LinearAddress"/>
/// into CR2 and delivers #PF with <see cref="ErrorCode"/>; for <see cref="TranslationStatus.NonCanonical"/> it
/// raises #GP(0) (or #SS(0) for a stack reference) and <see cref="ErrorCode"/> is <see cref="PageFaultErrorCode.None"/>.
/// </summary>
public readonly record struct PageFault(ulong LinearAddress, PageFaultErrorCode ErrorCode);
