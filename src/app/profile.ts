/**
 * Destination profiles from what a user names: a stream the destination accepted, or a
 * profile JSON (`migstream profile`'s output, or one written by hand).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../model/errors.js';
import { readAt } from '../io/source.js';
import {
  isUuidText,
  machineTypeVersion,
  parseProfile,
  PROFILE_FORMAT,
  PROFILE_VERSION,
  profileFromStream,
  type DestinationProfile,
} from '../loader/profile.js';
import { openSource } from './open.js';

/** The profile in `path`: a JSON document (first byte `{`) or a stream to take one from. */
export function readProfile(path: string): DestinationProfile {
  const src = openSource(path);
  const first = new Uint8Array(1);
  const isJson = src.seekable && readAt(src, first, 1, 0) === 1 && first[0] === 0x7b;
  if (!isJson) return profileFromStream(src, path);
  src.close();
  return parseProfile(readFileSync(path, 'utf8'), `profile ${path}`);
}

/** The profile of --profile, with --machine and --uuid laid over it (either alone is a profile too). */
export function destinationProfile(o: {
  profile?: string;
  machine?: string;
  uuid?: string;
}): DestinationProfile | undefined {
  if (o.profile === undefined && o.machine === undefined && o.uuid === undefined) return undefined;
  const p: DestinationProfile = o.profile
    ? readProfile(o.profile)
    : { format: PROFILE_FORMAT, version: PROFILE_VERSION };
  if (o.machine !== undefined) {
    p.machineType = o.machine;
    if (!o.profile) p.qemuVersion = machineTypeVersion(o.machine);
  }
  if (o.uuid !== undefined) {
    if (!isUuidText(o.uuid))
      throw new UsageError(`--uuid takes a UUID, 8-4-4-4-12 hex (got ${JSON.stringify(o.uuid)})`);
    p.uuid = o.uuid.toLowerCase();
  }
  return p;
}
