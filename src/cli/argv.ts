// Kept free of imports: the command-line entry (dispatch.ts) reads argv with it before any bundle is loaded.

/** Flags that go with any command, before or after its name; taken out before commander sees the rest. */
export const GLOBAL_FLAGS: ReadonlySet<string> = new Set(['--no-color', '--quiet', '-q']);

/** `argv` (node, script, args...) without the global flags. */
export function withoutGlobalFlags(argv: readonly string[]): string[] {
  return argv.filter((a) => !GLOBAL_FLAGS.has(a));
}

/** What the command line names first once the global flags are out: a command, an option (`--version`), or nothing. */
export function commandNamed(argv: readonly string[]): string | undefined {
  return withoutGlobalFlags(argv)[2];
}
