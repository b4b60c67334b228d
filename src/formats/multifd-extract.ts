/**
 * `--vfio-extract` for devices that moved their state over multifd: the buffers of each
 * device, read back from the channel files in idx order (any size: one buffer in memory at
 * a time), as the device would have received them; the config buffer's VFIOPCIDevice state
 * goes to <idstr>.config like the main channel's.
 */
import type { ChannelInput, MultifdJoin } from '../loader/multifd-load.js';
import { VFIO_DEVICE_STATE_CONFIG_STATE } from '../../grammar/vfio.js';
import type { VfioExtractor } from './vfio-extract.js';
import { readAt } from '../io/source.js';

export function extractMultifdDevices(join: MultifdJoin, channels: ChannelInput[], out: VfioExtractor): void {
  for (const [device, d] of join.devices) {
    const idxs = [...d.buffers.keys()].sort((a, b) => a - b);
    for (const idx of idxs) {
      const loc = d.buffers.get(idx)!;
      const b = new Uint8Array(loc.length);
      const channel = channels[loc.channel];
      if (!channel) throw new RangeError(`multifd buffer ${idx} of ${device} is on channel ${loc.channel}, not given`);
      const got = readAt(channel.source, b, loc.length, loc.offset);
      if (loc.flags & VFIO_DEVICE_STATE_CONFIG_STATE) out.writeConfig(device, b.subarray(8, Math.max(8, got - 8)));
      else out.write(device, b.subarray(0, got));
    }
  }
}
