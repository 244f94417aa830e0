using BenchmarkDotNet.Running;
using KvmSharp.Benchmarks;

if (Array.IndexOf(args, "--quick") >= 0)
{
    return QuickRun.Run(args);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
