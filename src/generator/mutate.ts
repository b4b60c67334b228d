/**
 * Edits that turn a valid generated stream into one that breaks a single loader rule.
 * They work on records, so every edited stream is still encoded by the one encoder.
 */
import { MultifdFlag } from '../../grammar/multifd.js';
import { VfioTag, type VfioTagName } from '../../grammar/vfio.js';
import type { MainRecord } from '../model/records.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import type { Mutation, RecordMatch } from './scenario.js';
import type { SavedStream } from './save.js';

function matches(rec: MainRecord, m: RecordMatch, sectionName: string | undefined): boolean {
  if (rec.kind !== m.kind) return false;
  if (m.tag !== undefined && !(rec.kind === 'vfio_tag' && rec.tag === m.tag)) return false;
  if (m.op !== undefined && !(rec.kind === 'ram' && rec.op === m.op)) return false;
  if (m.section !== undefined && sectionName !== m.section && !(rec.kind === 'section' && rec.section === m.section))
    return false;
  return true;
}

function find(main: MainRecord[], m: RecordMatch): number {
  let seen = 0;
  let section: string | undefined;
  for (const [i, r] of main.entries()) {
    if (r.kind === 'section') section = r.section;
    if (matches(r, m, section) && seen++ === (m.nth ?? 0)) return i;
  }
  throw new Error(`mutation: no record matches ${JSON.stringify(m)}`);
}

function tagRecord(name: string): MainRecord {
  const value = (VfioTag as Record<string, bigint>)[name];
  if (value === undefined) {
    return { kind: 'vfio_tag', offset: 0, length: 8, tag: null, value: BigInt(name) };
  }
  return { kind: 'vfio_tag', offset: 0, length: 8, tag: name as VfioTagName, value };
}

export function applyMutations(s: SavedStream, mutations: readonly Mutation[]): SavedStream {
  const main = [...s.main];
  const multifd = s.multifd.map((c) => [...c]);
  for (const m of mutations) {
    switch (m.op) {
      case 'drop':
        main.splice(find(main, m.match), 1);
        break;
      case 'replaceTag':
        main[find(main, m.match)] = tagRecord(m.tag);
        break;
      case 'insertTagAfter':
        main.splice(find(main, m.match) + 1, 0, tagRecord(m.tag));
        break;
      case 'setIrqState': {
        const i = main.findIndex((r) => r.kind === 'vfio_pci_config');
        const r = main[i];
        if (r?.kind === 'vfio_pci_config') main[i] = { ...r, irqState: [m.value, 0, 0, 0] };
        break;
      }
      default:
        mutateMultifd(multifd, m);
    }
  }
  return { main, multifd };
}

/** Where a device-state buffer is: channel `ch`, record `at` (its packet is record `at - 1`). */
interface BufferPos {
  ch: number;
  at: number;
}

function channelOf(channels: MultifdRecord[][], ch: number): MultifdRecord[] {
  const c = channels[ch];
  if (!c) throw new Error(`mutation: no multifd channel ${ch}`);
  return c;
}

function recordAt(channels: MultifdRecord[][], ch: number, at: number): MultifdRecord {
  const r = channelOf(channels, ch)[at];
  if (!r) throw new Error(`mutation: no record ${at} on multifd channel ${ch}`);
  return r;
}

/** Device-state buffers of all channels, in the order they were queued. */
function deviceBuffers(channels: MultifdRecord[][]): BufferPos[] {
  const out: BufferPos[] = [];
  channels.forEach((c, ch) =>
    c.forEach((r, at) => {
      if (r.kind === 'multifd_payload' && c[at - 1]?.kind === 'multifd_device_state') out.push({ ch, at });
    }),
  );
  return out.sort((a, b) => bufIdx(channels, a) - bufIdx(channels, b));
}

function bufIdx(channels: MultifdRecord[][], p: BufferPos): number {
  const r = recordAt(channels, p.ch, p.at);
  return r.kind === 'multifd_payload' ? new DataView(r.data.buffer, r.data.byteOffset).getUint32(4) : -1;
}

/** The device-state packet record in front of a buffer. */
function packetOf(channels: MultifdRecord[][], p: BufferPos): MultifdRecord {
  return recordAt(channels, p.ch, p.at - 1);
}

function setWord(channels: MultifdRecord[][], p: BufferPos, word: number, value: number): void {
  const r = recordAt(channels, p.ch, p.at);
  if (r.kind !== 'multifd_payload') return;
  const data = r.data.slice();
  new DataView(data.buffer).setUint32(word * 4, value);
  channelOf(channels, p.ch)[p.at] = { ...r, data };
}

function mutateMultifd(channels: MultifdRecord[][], m: Mutation): void {
  const bufs = deviceBuffers(channels);
  const pick = bufs[('index' in m ? m.index : undefined) ?? 0];
  const first = bufs[0];
  const last = bufs[bufs.length - 1];
  if (!pick || !first || !last) throw new Error(`mutation ${m.op}: no device-state buffer`);
  const pickChannel = channelOf(channels, pick.ch);
  switch (m.op) {
    case 'multifdVersion':
      setWord(channels, pick, 0, 1);
      break;
    case 'multifdInvalidIdx':
      setWord(channels, pick, 1, 0xffffffff);
      break;
    case 'multifdDuplicateIdx': {
      // a second copy of the buffer on the next channel
      const next = channelOf(channels, (pick.ch + 1) % channels.length);
      next.push(packetOf(channels, pick), recordAt(channels, pick.ch, pick.at));
      break;
    }
    case 'multifdDropIdx':
      pickChannel.splice(pick.at - 1, 2);
      break;
    case 'multifdConfigFlag': {
      // the config buffer's first be64 is no longer DEV_CONFIG_STATE
      setWord(channels, last, 3, 0xef100004);
      break;
    }
    case 'multifdRenameDevice':
    case 'multifdSyncDeviceState':
    case 'multifdUnterminatedIdstr': {
      const pk = packetOf(channels, pick);
      if (pk.kind !== 'multifd_device_state') break;
      const i = pickChannel.indexOf(pk);
      if (m.op === 'multifdSyncDeviceState') {
        pickChannel[i] = {
          ...pk,
          header: { ...pk.header, flags: pk.header.flags | MultifdFlag.MULTIFD_FLAG_SYNC },
        };
      } else {
        const idstr = pk.fields.idstr.slice();
        if (m.op === 'multifdRenameDevice') idstr.set(Buffer.from('0000:00:09.0/vfio'));
        else idstr[255] = 0x41; // the name stays, its terminator goes
        pickChannel[i] = { ...pk, fields: { ...pk.fields, idstr } };
      }
      break;
    }
    case 'multifdMoveConfigFirst': {
      // the config buffer claims idx 0 and buffer 0 takes the config's idx: config no longer last
      const lastIdx = bufIdx(channels, last);
      setWord(channels, last, 1, 0);
      setWord(channels, first, 1, lastIdx);
      break;
    }
    default:
      break;
  }
}
