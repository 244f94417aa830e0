namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// The virtio tests allocate hundreds of megabytes between them (random rings and requests, image files, a python
/// lock holder). Run alongside the other classes, the collections they cause made allocation tests elsewhere count
/// the unused tail of their thread's allocation context. In this collection they run after the parallel tests, one
/// class at a time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class VirtioTestCollection
{
    public const string Name = "Virtio (after the parallel tests)";
}
