/**
 * VFIO sections in the analyze-style dump (analyze-migration.py cannot read them): per
 * section, the tag sequence, data chunk sizes and totals, and the decoded PCI config.
 */
import type { MainRecord } from '../model/records.js';
import { le16At } from '../io/bytes.js';
import { msixVectors } from '../vfio/pci-config.js';
import type { PyValue } from './pyjson.js';

interface Phase {
  section: string;
  tags: string[];
  chunks: number[];
  bytes: number;
}

export class VfioSectionDump {
  private phases: Phase[] = [];
  private config: Map<string, PyValue> | undefined;

  section(kind: string): void {
    this.phases.push({ section: kind, tags: [], chunks: [], bytes: 0 });
  }

  add(rec: MainRecord): void {
    const p = this.phases[this.phases.length - 1];
    if (!p) return;
    if (rec.kind === 'vfio_tag') {
      p.tags.push(rec.tag ?? `0x${rec.value.toString(16)}`);
      if (rec.tag === 'DEV_DATA_STATE') {
        p.chunks.push(rec.size ?? 0);
        p.bytes += rec.size ?? 0;
      }
    } else if (rec.kind === 'vfio_pci_config') {
      const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
      this.config = new Map<string, PyValue>([
        ['pci version_id', rec.pciVersion],
        ['config size', rec.config.length],
        ['vendor', '0x' + le16At(rec.config, 0).toString(16).padStart(4, '0')],
        ['device', '0x' + le16At(rec.config, 2).toString(16).padStart(4, '0')],
        ['irq_state', rec.irqState],
        ['msix vectors', msixVectors(rec.config)],
        ['config', hex(rec.config)],
      ]);
      if (rec.msixTable) this.config.set('msix table', hex(rec.msixTable));
      if (rec.msixPba) this.config.set('msix pba', hex(rec.msixPba));
      if (rec.display) this.config.set(rec.display.name, hex(rec.display.ramfb));
    }
  }

  toPy(): PyValue {
    const total = this.phases.reduce((n, p) => n + p.bytes, 0);
    const out = new Map<string, PyValue>([
      [
        'phases',
        this.phases.map(
          (p) =>
            new Map<string, PyValue>([
              ['section', p.section],
              ['tags', p.tags],
              ['data chunks', p.chunks],
              ['data bytes', p.bytes],
            ]),
        ),
      ],
      ['data bytes', total],
    ]);
    if (this.config) out.set('pci config', this.config);
    return out;
  }
}
