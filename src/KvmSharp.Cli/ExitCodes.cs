namespace KvmSharp.Cli;

/// <summary>
/// Process exit codes of <c>kvmsharp</c> for failures before a guest runs (README.md, "Exit codes"). How a
/// guest's run maps to a code (3 triple fault, 4 debug exit, 5 backend error, 6 VMM failure, the debug-exit
/// port's status) is <see cref="Vmm.MachineExit.ProcessExitCode"/>; <see cref="VmmError"/> equals its 6.
/// </summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int UsageError = 1;
    public const int KvmUnavailable = 2;
    public const int VmmError = 6;
}
