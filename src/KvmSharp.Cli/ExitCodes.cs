namespace KvmSharp.Cli;

/// <summary>Process exit codes of <c>kvmsharp</c> (README.md, "Exit codes").</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int UsageError = 1;
    public const int KvmUnavailable = 2;
    public const int GuestShutdown = 3;
    public const int GuestDebugExit = 4;
    public const int BackendError = 5;
    public const int VmmError = 6;
}
