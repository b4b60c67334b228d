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
];

const cell = (s: string): string => s.replace(/\|/g, '\\|');

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
    'in `test/qemu.test.ts` (Q). A warning does not make a stream invalid.',
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
  return out.join('\n') + '\n';
}
