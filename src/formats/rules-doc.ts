/**
 * docs/validate-rules.md, rendered from the rule catalogue (grammar/rules.ts) so the two
 * cannot drift: `npm run docs` writes it, test/docs.test.ts checks it is current.
 */
import { RULES, type RuleGroup } from '../../grammar/rules.js';

const GROUPS: readonly { group: RuleGroup; title: string; intro: string }[] = [
  {
    group: 'stream',
    title: 'Decode errors',
    intro: 'A decode error ends the channel it is in; its rule is `stream/<code>` of the StreamError.',
  },
  {
    group: 'main',
    title: 'Main channel',
    intro: 'Rules of qemu_loadvm_state and the section handlers on the main channel.',
  },
  { group: 'vfio', title: 'VFIO (`*/vfio` sections)', intro: 'Rules of vfio_load_state on the main channel.' },
  {
    group: 'multifd',
    title: 'Multifd channels (`--multifd`)',
    intro: 'Rules of the multifd receive threads, and of VFIO device state sent over them.',
  },
  {
    group: 'return-path',
    title: 'Return path (`--return-path`)',
    intro: 'What the destination sends back, checked against the main channel.',
  },
  {
    group: 'cpr',
    title: 'CPR state channel (a capture starting with QCPR)',
    intro:
      'Rules of cpr_state_load over the channel cpr-transfer sends before the main migration (QEMU 10.0+). A capture holds the bytes, not the descriptors passed beside them.',
  },
];

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/**
 * Where validate's verdict can still differ from QEMU's destination, and why: what a reader of
 * a verdict must know. Measured by scripts/differential.ts (mutants of 7.2 recordings loaded
 * into QEMU 7.2).
 */
const KNOWN_DISAGREEMENTS: readonly string[] = [
  "Without a destination profile, device payloads are read by the stream's own vmdescription, which QEMU never reads. A byte changed inside the vmdescription can make a stream QEMU loads look invalid (`vmstate/description-mismatch`, `stream/bad-vmdesc`), and a description that no longer matches the payload can hide where a device section ends in a stream without footers (`stream/undelimited-section`). With `--profile` the destination's own layouts decide; these are the disagreements the measurement finds without it.",
  "The destination's settings that a stream does not carry are assumed to be QEMU's defaults unless given (`--profile`, `--no-configuration`, `--no-section-footer`, `--capability`, `--multifd-channels`, `--multifd-compression`, `--qemu-version`): a stream judged against the wrong destination gets that destination's verdict.",
  'Checks that individual devices make in their post_load hooks (a value out of range for that device) are not modelled: a changed field value that a device refuses is accepted. None appeared among the measured mutants.',
  'Resizeable RAMBlocks (fw_cfg ROM blobs, `/rom@etc/...`) may change length up to a maximum that neither the stream nor a profile records: any length is accepted for them.',
  'Page contents are not judged (QEMU does not judge them either), except the structure of XBZRLE and COMPRESS_PAGE data, which QEMU decodes.',
];

export function renderRulesDoc(): string {
  const out: string[] = [
    '# What `migstream validate` checks',
    '',
    '<!-- generated from grammar/rules.ts by `npm run docs`; edit the table there -->',
    '',
    "Every diagnostic names one of these rules. They follow what QEMU's destination does with the",
    "same bytes, in QEMU's wording where QEMU prints a message, so a rule can be looked up in QEMU's",
    'source. Sources: `shared/spec/savevm-main-channel.md` (SM) with its corrections (SMC),',
    '`vfio-and-multifd.md` (VM) with its verification (VMV), and the comparison with a real QEMU 7.2',
    'in `test/qemu.test.ts` and `test/differential.test.ts` (Q). A warning does not make a stream invalid.',
  ];
  for (const g of GROUPS) {
    out.push(
      '',
      `## ${g.title}`,
      '',
      g.intro,
      '',
      "| rule | severity | QEMU's behaviour | source |",
      '|---|---|---|---|',
    );
    for (const r of RULES)
      if (r.group === g.group) out.push(`| \`${r.id}\` | ${r.severity} | ${cell(r.qemu)} | ${r.source} |`);
  }
  out.push('', '## Where the verdict can still differ from QEMU', '');
  for (const d of KNOWN_DISAGREEMENTS) out.push(`- ${d}`);
  out.push(
    '',
    'Measured with `node dist/scripts/differential.js --per-case 160 --seed 7` (mutants of seven QEMU 7.2',
    'recordings, every mutator of the fuzzer in turn, loaded into QEMU 7.2 by `bin/qemu-load`): see the',
    'README for the figures with and without `--profile`.',
  );
  return out.join('\n') + '\n';
}
