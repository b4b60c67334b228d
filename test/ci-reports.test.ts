import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

/**
 * validate --format junit|sarif, checked against the formats' own schemas (test/schemas/:
 * where each comes from is in its README) and against validate's JSON output of the same run.
 */
const BIN = join(ROOT, 'bin', 'migstream');
const VFIO = join('fixtures', 'vfio');
const tmp = tempDir('migstream-ci-reports-');
const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;

function validate(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'validate', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface JsonDiagnostic {
  rule: string;
  offset: number;
  message: string;
  channel?: string;
}
interface JsonVerdict {
  file: string;
  valid: boolean;
  diagnostics: JsonDiagnostic[];
  warnings: { offset: number; message: string }[];
}

const SETS: { name: string; args: string[] }[] = [
  {
    name: 'several streams, valid and invalid',
    args: [
      join('fixtures', 'real', 'qemu-7.2', 'pc-paused.mig'),
      join(VFIO, 'bad-config-end-flag.mig'),
      join(VFIO, 'bad-init-data-twice.mig'),
    ],
  },
  {
    name: 'a multifd set whose channel holds the error',
    args: [
      join(VFIO, 'bad-multifd-buffer-version.mig'),
      '--multifd',
      join(VFIO, 'bad-multifd-buffer-version.multifd0.bin'),
      '--multifd',
      join(VFIO, 'bad-multifd-buffer-version.multifd1.bin'),
    ],
  },
];

/** validate --format json of the same inputs: a list of verdicts whatever the count. */
function jsonVerdicts(args: string[]): JsonVerdict[] {
  const doc = JSON.parse(validate([...args, '--format', 'json']).stdout) as JsonVerdict | { files: JsonVerdict[] };
  return 'files' in doc ? doc.files : [doc];
}

describe('validate --format sarif', () => {
  const raw = JSON.parse(readFileSync(join(ROOT, 'test', 'schemas', 'sarif-2.1.0.schema.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  // draft-04 as draft-07: `id` is `$id`; the schema uses no keyword whose meaning changed
  const { $schema: _draft, id, ...rest } = raw;
  // its language pattern has a stray ']' that only non-unicode RegExp accepts
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  // a CommonJS module seen from ESM: its export default is one level down (the plugin is its own .default)
  ajvFormats.default.default(ajv);
  const check = ajv.compile({ ...rest, $id: id as string });

  for (const set of SETS) {
    it(`${set.name}: a valid SARIF 2.1.0 log holding every diagnostic and warning of the JSON output`, () => {
      const r = validate([...set.args, '--format', 'sarif']);
      expect(r.code).toBe(1);
      const log = JSON.parse(r.stdout) as {
        version: string;
        runs: {
          tool: { driver: { rules: { id: string }[] } };
          artifacts: { location: { uri: string } }[];
          results: {
            ruleId: string;
            ruleIndex: number;
            level: string;
            message: { text: string };
            locations: {
              physicalLocation: { artifactLocation: { uri: string; index: number }; region: { byteOffset: number } };
            }[];
          }[];
        }[];
      };
      expect(check(log), JSON.stringify(check.errors?.slice(0, 3))).toBe(true);
      const run = log.runs[0];
      const expected = jsonVerdicts(set.args).flatMap((v) => [
        ...v.diagnostics.map((d) => ({ rule: d.rule, file: d.channel ?? v.file, offset: d.offset, text: d.message })),
        ...v.warnings.map((w) => ({ rule: 'decoder/warning', file: v.file, offset: w.offset, text: w.message })),
      ]);
      expect(expected.length).toBeGreaterThan(0);
      expect(
        run.results.map((x) => {
          const loc = x.locations[0].physicalLocation;
          return {
            rule: x.ruleId,
            file: loc.artifactLocation.uri,
            offset: loc.region.byteOffset,
            text: x.message.text,
          };
        }),
      ).toEqual(expected.map((e) => ({ ...e, text: expect.stringContaining(e.text) as unknown })));
      for (const x of run.results) {
        expect(run.tool.driver.rules[x.ruleIndex]?.id).toBe(x.ruleId);
        const loc = x.locations[0].physicalLocation.artifactLocation;
        expect(run.artifacts[loc.index]?.location.uri).toBe(loc.uri);
      }
    });
  }

  it('a valid stream: an empty result list, exit 0', () => {
    const r = validate([join('fixtures', 'real', 'qemu-7.2', 'pc-paused.mig'), '--format', 'sarif']);
    expect(r.code).toBe(0);
    const log = JSON.parse(r.stdout) as { runs: { results: unknown[] }[] };
    expect(check(log)).toBe(true);
    expect(log.runs[0]?.results).toEqual([]);
    // and the schema check bites: a log of another SARIF version is refused
    expect(check({ ...log, version: '2.0.0' })).toBe(false);
  });
});

describe.skipIf(!hasXmllint)('validate --format junit', () => {
  for (const set of SETS) {
    it(`${set.name}: valid against Ant's JUnit schema; a test case per stream, failed with its first error`, () => {
      const r = validate([...set.args, '--format', 'junit']);
      expect(r.code).toBe(1);
      const file = join(tmp, 'report.xml');
      writeFileSync(file, r.stdout);
      const lint = spawnSync('xmllint', ['--noout', '--schema', join(ROOT, 'test', 'schemas', 'junit.xsd'), file], {
        encoding: 'utf8',
      });
      expect(lint.stderr.trim()).toBe(`${file} validates`);
      const verdicts = jsonVerdicts(set.args);
      const cases = [...r.stdout.matchAll(/<testcase classname="migstream.validate" name="([^"]+)"[^>]*?(\/?)>/g)];
      expect(cases.map((c) => c[1])).toEqual(verdicts.map((v) => v.file));
      expect(cases.map((c) => c[2] === '/')).toEqual(verdicts.map((v) => v.valid));
      const failures = [...r.stdout.matchAll(/<failure type="([^"]+)"/g)].map((m) => m[1]);
      expect(failures).toEqual(verdicts.filter((v) => !v.valid).map((v) => v.diagnostics[0]?.rule));
      expect(r.stdout).toContain(`tests="${verdicts.length}" failures="${failures.length}"`);
    });
  }

  it('bytes XML cannot hold (a control character in a machine type) are written as \\xNN', () => {
    // pc-paused with its machine type's first byte made 0x01: the loader quotes the name it read
    const bytes = new Uint8Array(readFileSync(join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-paused.mig')));
    const at = Buffer.from(bytes).indexOf('pc-i440fx');
    expect(at).toBeGreaterThan(0);
    bytes[at] = 0x01;
    const f = join(tmp, 'control.mig');
    writeFileSync(f, bytes);
    const r = spawnSync(process.execPath, [BIN, 'validate', f, '--format', 'junit', '--machine', 'pc-i440fx-7.2'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('\\x01c-i440fx');
    const out = join(tmp, 'control.xml');
    writeFileSync(out, r.stdout);
    const lint = spawnSync('xmllint', ['--noout', '--schema', join(ROOT, 'test', 'schemas', 'junit.xsd'), out], {
      encoding: 'utf8',
    });
    expect(lint.status).toBe(0);
  });
});
