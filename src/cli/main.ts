import { runMain, type CommandTable } from './program.js';

/**
 * The commands in the order `--help` lists them, each loaded only when it is needed: a run
 * of one command loads that command's modules and no other's (start-up time is most of a
 * small file's run; the generator's JSON Schema checker alone is a quarter of the code).
 * The bundle (scripts/bundle.ts) makes one file per command from these names: `command-NAME.cjs`
 * with the module `./NAME.js` and its export `registerName`.
 */
const COMMANDS: CommandTable = [
  ['dump', async () => (await import('./dump.js')).registerDump],
  ['encode', async () => (await import('./encode.js')).registerEncode],
  ['roundtrip', async () => (await import('./roundtrip.js')).registerRoundtrip],
  ['stats', async () => (await import('./stats.js')).registerStats],
  ['validate', async () => (await import('./validate.js')).registerValidate],
  ['gen', async () => (await import('./gen.js')).registerGen],
  ['fuzz', async () => (await import('./fuzz.js')).registerFuzz],
  ['profile', async () => (await import('./profile.js')).registerProfile],
  ['model', async () => (await import('./model.js')).registerModel],
  ['analyze', async () => (await import('./analyze.js')).registerAnalyze],
  ['diff', async () => (await import('./diff.js')).registerDiff],
  ['libvirt-xml', async () => (await import('./libvirt-xml.js')).registerLibvirtXml],
  ['snapshots', async () => (await import('./snapshots.js')).registerSnapshots],
  ['tap', async () => (await import('./tap.js')).registerTap],
];

/** Every command's name, in `--help`'s order. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map(([name]) => name);

/** The command line with every command: `main(process.argv)` resolves to the exit code. */
export function main(argv: string[]): Promise<number> {
  return runMain(argv, COMMANDS);
}
