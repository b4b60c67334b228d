import type { Command } from 'commander';
import { libvirtXmlOf } from '../app/libvirt-xml.js';
import { withExamples } from './common.js';
import { printStdout } from './output.js';

export function registerLibvirtXml(program: Command): void {
  const cmd = program
    .command('libvirt-xml')
    .description('print the domain XML of a libvirt save image (virsh save), as virsh save-image-dumpxml does')
    .argument('<image>', 'a libvirt save image (raw, sparse or gzip body)')
    .option('--cookie', 'print the migration cookie stored after the XML instead');
  withExamples(cmd, [
    'migstream libvirt-xml fixtures/libvirt/pc-paused-7.2.save',
    'migstream libvirt-xml --cookie fixtures/libvirt/pc-paused-7.2.save',
  ]).action((image: string, o: { cookie?: boolean }) => {
    const r = libvirtXmlOf(image);
    const text = o.cookie ? (r.cookie ?? '') : r.xml;
    printStdout(text.endsWith('\n') ? text : `${text}\n`);
  });
}
