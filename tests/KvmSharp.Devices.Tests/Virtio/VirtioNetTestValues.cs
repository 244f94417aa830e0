using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Net;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>What the virtio-net test rigs share: the queue size, the features a full driver accepts, the MAC.</summary>
internal static class VirtioNetTestValues
{
    public const ushort QueueSize = 16;

    public const ulong AllFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioNet.FeatureMac | VirtioNet.FeatureStatus
        | VirtioNet.FeatureMtu | VirtioNet.FeatureMergeableRxBuffers | VirtioNet.FeatureCsum | VirtioNet.FeatureGuestCsum
        | VirtioNet.FeatureCtrlVq | VirtioNet.FeatureCtrlGuestOffloads;

    public static readonly byte[] Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
}
