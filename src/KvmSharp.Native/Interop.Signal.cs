using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int SIGUSR1 = 10;
        internal const int SA_RESTART = 0x10000000;
        internal const int SA_ONSTACK = 0x08000000;

        /// <summary>glibc's <c>struct sigaction</c> on x86-64 (152 bytes): handler, 1024-bit mask, flags, restorer.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct sigaction_t
        {
            public nint sa_handler;
            public fixed ulong sa_mask[16];
            public int sa_flags;
            public nint sa_restorer;
        }

        [LibraryImport(LibraryName, EntryPoint = "sigaction", SetLastError = true)]
        internal static unsafe partial int SigAction(int signal, sigaction_t* action, sigaction_t* oldAction);

        [LibraryImport(LibraryName, EntryPoint = "pthread_self")]
        internal static partial nuint PthreadSelf();

        /// <summary>Returns an errno value (not -1) on failure, as pthread functions do.</summary>
        [LibraryImport(LibraryName, EntryPoint = "pthread_kill")]
        internal static partial int PthreadKill(nuint thread, int signal);

        [LibraryImport(LibraryName, EntryPoint = "gettid")]
        internal static partial int GetTid();
    }
}
