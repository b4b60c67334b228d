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
