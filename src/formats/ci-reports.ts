/**
 * validate's verdicts in the formats CI systems read:
 * - JUnit XML (Apache Ant's report layout: Jenkins, GitLab, GitHub test reporters): one test
 *   case per stream, failed with its error diagnostics;
 * - SARIF 2.1.0 (GitHub code scanning and other static-analysis viewers): the rule catalogue
 *   as the tool's rules, one result per diagnostic with the byte region it points at.
 */
import { RULES, type RuleSeverity } from '../../grammar/rules.js';
import type { Diagnostic } from '../model/diagnostic.js';

/** One validated stream, as the command line has it. */
export interface FileVerdict {
  file: string;
  valid: boolean;
  diagnostics: readonly Diagnostic[];
  warnings: readonly { offset: number; path: string; message: string }[];
  /** how long the check took */
  seconds: number;
}

export interface ReportContext {
  version: string;
  hostname: string;
  /** when the run started */
  started: Date;
}

/** A diagnostic as one line of text (the same words as validate's text output). */
function diagnosticLine(d: Diagnostic, file: string): string {
  return `${d.channel ?? file}: at 0x${d.offset.toString(16)}: ${d.path ? d.path + ': ' : ''}${d.severity} [${d.rule}] ${d.message}`;
}

// --- JUnit ------------------------------------------------------------------------------------

/** Text for XML: markup escaped, and the characters XML 1.0 cannot hold at all written as \xNN. */
function xml(s: string): string {
  return s
    .replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c] ?? ''};`)
    .replace(
      // eslint-disable-next-line no-control-regex -- the characters XML 1.0 forbids are the point
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
    );
}

/** The timestamp the Ant schema takes: local-free "YYYY-MM-DDTHH:MM:SS" (UTC here). */
function antTimestamp(d: Date): string {
  return d.toISOString().slice(0, 19);
}

export function junitReport(verdicts: readonly FileVerdict[], ctx: ReportContext): string {
  const failures = verdicts.filter((v) => !v.valid).length;
  const time = verdicts.reduce((t, v) => t + v.seconds, 0);
  const cases = verdicts.map((v) => {
    const errors = v.diagnostics.filter((d) => d.severity === 'error');
    const open = `    <testcase classname="migstream.validate" name="${xml(v.file)}" time="${v.seconds.toFixed(3)}"`;
    if (v.valid) return `${open}/>`;
    const first = errors[0] ?? v.diagnostics[0];
    const text = v.diagnostics.map((d) => diagnosticLine(d, v.file)).join('\n');
    return (
      `${open}>\n` +
      `      <failure type="${xml(first?.rule ?? 'invalid')}" message="${xml(first ? diagnosticLine(first, v.file) : 'invalid')}">${xml(text)}</failure>\n` +
      `    </testcase>`
    );
  });
  const warnings = verdicts.flatMap((v) =>
    v.warnings.map(
      (w) => `${v.file}: at 0x${w.offset.toString(16)}: ${w.path ? w.path + ': ' : ''}warning ${w.message}`,
    ),
  );
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<testsuites>',
    `  <testsuite name="migstream validate" package="migstream" id="0" timestamp="${antTimestamp(ctx.started)}" hostname="${xml(ctx.hostname || 'localhost')}" tests="${verdicts.length}" failures="${failures}" errors="0" skipped="0" time="${time.toFixed(3)}">`,
    '    <properties>',
    `      <property name="migstream.version" value="${xml(ctx.version)}"/>`,
    '    </properties>',
    ...cases,
    `    <system-out>${xml(warnings.join('\n'))}</system-out>`,
    '    <system-err></system-err>',
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

// --- SARIF ------------------------------------------------------------------------------------

const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';
/** The decoder's warnings (a payload kept raw, a description that does not fit) are results too. */
const DECODER_WARNING = 'decoder/warning';

function level(s: RuleSeverity): 'error' | 'warning' {
  return s === 'error' ? 'error' : 'warning';
}

/** A path as a SARIF artifact URI: relative paths stay relative (to the directory CI ran in). */
function artifactUri(file: string): string {
  return file
    .split('/')
    .map((part) => encodeURIComponent(part))
    .join('/');
}

export function sarifReport(verdicts: readonly FileVerdict[], ctx: ReportContext): string {
  const rules = [
    ...RULES.map((r) => ({
      id: r.id,
      shortDescription: { text: r.qemu },
      defaultConfiguration: { level: level(r.severity) },
      properties: { group: r.group, source: r.source },
    })),
    {
      id: DECODER_WARNING,
      shortDescription: {
        text: "the decoder kept bytes raw or read them differently from the stream's own description",
      },
      defaultConfiguration: { level: 'warning' },
      properties: { group: 'decoder', source: 'migstream' },
    },
  ];
  const ruleIndex = new Map(rules.map((r, i) => [r.id, i]));
  const artifacts: string[] = [];
  const artifactIndex = (file: string): number => {
    let i = artifacts.indexOf(file);
    if (i < 0) i = artifacts.push(file) - 1;
    return i;
  };
  const location = (file: string, offset: number, path: string) => ({
    physicalLocation: {
      artifactLocation: { uri: artifactUri(file), index: artifactIndex(file) },
      region: { byteOffset: offset, byteLength: 1 },
    },
    ...(path ? { logicalLocations: [{ fullyQualifiedName: path }] } : {}),
  });
  const results = verdicts.flatMap((v) => [
    ...v.diagnostics.map((d) => ({
      ruleId: d.rule,
      ruleIndex: ruleIndex.get(d.rule) ?? -1,
      level: level(d.severity),
      message: { text: `${d.path ? d.path + ': ' : ''}${d.message}` },
      locations: [location(d.channel ?? v.file, d.offset, d.path)],
    })),
    ...v.warnings.map((w) => ({
      ruleId: DECODER_WARNING,
      ruleIndex: ruleIndex.get(DECODER_WARNING) ?? -1,
      level: 'warning' as const,
      message: { text: `${w.path ? w.path + ': ' : ''}${w.message}` },
      locations: [location(v.file, w.offset, w.path)],
    })),
  ]);
  for (const v of verdicts) artifactIndex(v.file);
  const log = {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'migstream',
            version: ctx.version,
            informationUri: 'https://www.npmjs.com/package/migstream',
            rules,
          },
        },
        invocations: [{ executionSuccessful: true, startTimeUtc: ctx.started.toISOString() }],
        artifacts: artifacts.map((f) => ({
          location: { uri: artifactUri(f) },
          roles: ['analysisTarget'],
        })),
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + '\n';
}
