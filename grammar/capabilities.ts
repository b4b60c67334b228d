import { versionAtLeast } from './version.js';

/**
 * QEMU's migration capability names (qapi/migration.json MigrationCapability), as
 * migrate-set-capabilities takes them; options that name a capability accept only these.
 * `compress` and `block` were removed in 9.1, but streams with them exist (7.2 recordings).
 */
export const MIGRATION_CAPABILITIES = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'block',
  'return-path',
  'pause-before-switchover',
  'multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'x-ignore-shared',
  'validate-uuid',
  'background-snapshot',
  'zero-copy-send',
  'postcopy-preempt',
  'switchover-ack',
  'dirty-limit',
  'mapped-ram',
] as const;
export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];

/**
 * Capabilities newer than the oldest release migstream judges as a destination (7.2), with the
 * release that added them (qapi/migration.json "since"), and those removed since (their names
 * are no longer MigrationCapability values). A destination's get_capability (savevm.c) refuses a
 * configuration that names a capability it does not know: "Received unknown capability NAME".
 */
export const CAPABILITY_SINCE: Partial<Record<MigrationCapability, readonly [number, number]>> = {
  'zero-copy-send': [7, 1],
  'postcopy-preempt': [7, 1],
  'switchover-ack': [8, 1],
  'dirty-limit': [8, 1],
  'mapped-ram': [9, 0],
};
export const CAPABILITY_REMOVED_IN: Partial<Record<MigrationCapability, readonly [number, number]>> = {
  compress: [9, 1],
  block: [9, 1],
};

/** Whether QEMU `version` (X.Y) has a migration capability of this name. */
export function capabilityKnownTo(name: string, version: string): boolean {
  const c = MIGRATION_CAPABILITIES.find((x) => x === name);
  if (c === undefined) return false;
  const since = CAPABILITY_SINCE[c];
  const removed = CAPABILITY_REMOVED_IN[c];
  return (!since || versionAtLeast(version, ...since)) && (!removed || !versionAtLeast(version, ...removed));
}
