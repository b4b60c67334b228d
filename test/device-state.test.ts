import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateFile } from '../src/app/validate.js';
import { openMainStream, roundtripSource } from '../src/codec/open.js';
import { locateVmdesc, readVmdescJson } from '../src/codec/locate-vmdesc.js';
import { FileSource } from '../src/io/source.js';
import { parseVmDescription } from '../src/vmstate/vmdesc.js';
import { ROOT } from './helpers.js';

/**
 * Device-state-only streams, as QMP xen-save-devices-state (and COLO) write them: recorded
 * with Debian's QEMU 7.2 by fixtures/recorded-7.2/record-state-files.py, in the same run as a
 * full `migrate` of the same paused VM, and loaded back by QEMU with xen-load-devices-state
 * (its verdicts are in pc-device-state.meta.json).
 */
const DIR = join(ROOT, 'fixtures', 'recorded-7.2');
const DEVICE_STATE = join(DIR, 'pc-device-state.mig');
const FULL = join(DIR, 'pc-device-state.full.mig');
interface Load {
  extra_argv: string[];
  exit: number;
  stderr: string;
}
const meta = JSON.parse(readFileSync(join(DIR, 'pc-device-state.meta.json'), 'utf8')) as { loads: Load[] };

/** Each FULL section's identity and payload bytes, in stream order. */
function sections(path: string, vmdescFrom?: string) {
  const bytes = readFileSync(path);
  let vmdesc;
  if (vmdescFrom) {
    const src = new FileSource(vmdescFrom);
    const loc = locateVmdesc(src);
    if (!loc) throw new Error(`${vmdescFrom} has no vmdescription`);
    vmdesc = parseVmDescription(readVmdescJson(src, loc));
    src.close();
  }
  const s = openMainStream(new FileSource(path), { vmdesc });
  const out: { key: string; payload: Buffer; fields?: unknown }[] = [];
  const kinds: string[] = [];
  for (const r of s.records()) {
    kinds.push(r.kind === 'section' ? `section ${r.section}` : r.kind);
    if (r.kind === 'section') out.push({ key: `${r.idstr} ${r.instanceId} v${r.versionId}`, payload: Buffer.alloc(0) });
    const last = out[out.length - 1];
    if (last && (r.kind === 'raw' || r.kind === 'vmstate') && !r.depth) {
      last.payload = bytes.subarray(r.offset, r.offset + r.length);
      if (r.kind === 'vmstate') last.fields = r.node;
    }
  }
  s.close();
  return { sections: out, kinds: new Set(kinds) };
}

describe('device-state-only streams (xen-save-devices-state, QEMU 7.2)', () => {
  it('are the savevm framing with FULL device sections only: no configuration, RAM, command or vmdescription', () => {
    const { kinds } = sections(DEVICE_STATE);
    expect([...kinds].sort()).toEqual(['eof', 'file_header', 'raw', 'section FULL', 'section_footer']);
  });

  it('round-trip byte for byte', () => {
    const r = roundtripSource(new FileSource(DEVICE_STATE), new FileSource(DEVICE_STATE));
    expect(r.error).toBeUndefined();
    expect(r.identical).toBe(true);
    expect(r.bytes).toBe(readFileSync(DEVICE_STATE).length);
  });

  it('carry the device sections of a full migration of the same VM, byte for byte but the run state', () => {
    const dev = sections(DEVICE_STATE, FULL).sections;
    const full = sections(FULL).sections.filter((s) => s.key !== 'ram 0 v4');
    expect(dev.map((s) => s.key)).toEqual(full.map((s) => s.key));
    const differ = dev.filter((s, i) => !s.payload.equals(full[i]?.payload ?? Buffer.alloc(0))).map((s) => s.key);
    // global_state_store_running() for xen-save-devices-state; the paused (-S) VM's own state for migrate
    expect(differ).toEqual(['globalstate 0 v1']);
    const runstate = (payload: Buffer) => payload.subarray(4, 4 + payload.readUInt32BE(0) - 1).toString('latin1');
    expect(runstate(dev.find((s) => s.key === 'globalstate 0 v1')?.payload ?? Buffer.alloc(4))).toBe('running');
    expect(runstate(full.find((s) => s.key === 'globalstate 0 v1')?.payload ?? Buffer.alloc(4))).toBe('prelaunch');
    // decoded with the full stream's vmdescription: every section by its fields
    expect(dev.every((s) => s.fields !== undefined)).toBe(true);
  });

  it('are judged as QEMU 7.2 loaded them: refused with send-configuration on, loaded with it off', () => {
    const [byDefault, configurationOff] = meta.loads;
    // xen-load-devices-state runs qemu_loadvm_state: the header check fails first
    expect(byDefault?.extra_argv).toEqual([]);
    expect(byDefault?.stderr.split('\n')[0]).toBe('Configuration section missing');
    const refused = validateFile(DEVICE_STATE);
    expect(refused.valid).toBe(false);
    expect(refused.diagnostics.map((d) => [d.rule, d.offset])).toEqual([['savevm/configuration-missing', 8]]);
    expect(refused.diagnostics[0]?.message).toContain('device-state-only stream (xen-save-devices-state)');
    // with it off QEMU reads every section; its only message is the non-fatal one about the missing
    // vmdescription (QEMU 7.2 then aborts in its own clean-up: yank_unregister_instance's assertion)
    expect(configurationOff?.extra_argv).toEqual(['-global', 'migration.send-configuration=off']);
    expect(configurationOff?.stderr.split('\n')[0]).toBe('Expected vmdescription section, but got 0');
    expect(configurationOff?.stderr).toContain("yank_unregister_instance: Assertion `entry' failed");
    const loaded = validateFile(DEVICE_STATE, { sendConfiguration: false });
    expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(loaded.valid).toBe(true);
  });
});
