import { InvalidArgumentError, Option, type Command } from 'commander';
import { destinationProfile } from '../app/profile.js';
import { tap, type TapEndpoint, type TapEvent, type TapPhase, type TapProgress } from '../app/tap.js';
import { collectCapability, withExamples } from './common.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';
import { printStdout } from './output.js';
import { binaryAmount } from './progress.js';

interface TapCliOptions {
  listen: TapEndpoint;
  to: TapEndpoint;
  save?: string;
  format: 'text' | 'json';
  capability: string[];
  profile?: string;
  machine?: string;
  stopOnError?: boolean;
  mutate?: number;
  mutations: number;
  once?: boolean;
}

export function registerTap(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('tap')
    .description(
      'relay a live migration between a source and its destination, decoding and judging it as it passes (exit 1 when a migration failed or broke a rule)',
    )
    .requiredOption('--listen <host:port>', 'where the source migrates to (migrate tcp:HOST:PORT)', endpoint)
    .requiredOption('--to <host:port>', "the destination's -incoming tcp:HOST:PORT", endpoint)
    .option('--save <dir>', "write each channel's bytes: main.mig, main.multifdN.bin, main-return-path.bin")
    .addOption(
      new Option('--format <format>', 'text, or one JSON line per event').choices(['text', 'json']).default('text'),
    )
    .addOption(
      new Option('--capability <name>', 'destination capability (QEMU name), repeatable')
        .argParser(collectCapability)
        .default([]),
    )
    .option(
      '--profile <file>',
      'the destination: a stream it accepted or a JSON from `migstream profile`; the stream is judged for it',
    )
    .option(
      '--machine <type>',
      "the destination's machine type (-machine pc-i440fx-7.2): the stream's must be the same",
    )
    .option(
      '--stop-on-error',
      'hold the main channel until each record is judged; at the first error close both sides before forwarding it',
    )
    .option(
      '--mutate <seed>',
      'break record headers on their way (main channel: section type, section id, MIG_CMD; multifd channels: a packet magic), chosen by this seed, each channel its own draw; each is reported',
      nonNegativeInteger,
    )
    .option('--mutations <n>', 'how many records --mutate breaks on each channel', nonNegativeInteger, 1)
    .option('--once', 'exit after the first migration ends');
  withExamples(cmd, [
    'migstream tap --listen 127.0.0.1:4444 --to 127.0.0.1:4445 --save capture --once   # live: the destination has -incoming tcp:127.0.0.1:4445; then migrate tcp:127.0.0.1:4444 on the source',
    'migstream tap --listen 127.0.0.1:4444 --to 127.0.0.1:4445 --format json   # live: one JSON line per event, a summary per migration',
    'migstream tap --listen 127.0.0.1:4444 --to 127.0.0.1:4445 --profile fixtures/recorded-7.2/q35-devices-running.mig --stop-on-error   # live: a stream the q35 destination would refuse never reaches it',
    'migstream tap --listen 127.0.0.1:4444 --to 127.0.0.1:4445 --mutate 7 --save capture --once   # live: one record header broken on its way; capture/main.mig is what the destination got',
  ]).action(async (o: TapCliOptions) => {
    let code = EXIT_OK;
    // a person watching at a terminal gets a status line, rewritten in place, under the events
    const status = o.format === 'text' && process.stdout.isTTY ? new StatusLine() : undefined;
    const profile = destinationProfile({ profile: o.profile, machine: o.machine });
    const req = {
      listen: o.listen,
      to: o.to,
      save: o.save,
      capability: o.capability,
      profile,
      stopOnError: o.stopOnError,
      once: o.once,
      progressMs: status ? STATUS_EVERY_MS : undefined,
      mutate: o.mutate === undefined ? undefined : { seed: o.mutate, count: o.mutations },
    };
    await tap(req, (e) => {
      if (e.event === 'progress') {
        status?.show(e);
        return;
      }
      status?.clear();
      if (e.event === 'migration' && e.status === 'failed') code = EXIT_INVALID;
      printStdout(o.format === 'json' ? JSON.stringify(e) + '\n' : text(e));
    });
    exit.set(code);
  });
}

const STATUS_EVERY_MS = 250;

/** The phase, RAM's iterations and rounds, and since the source stopped, the downtime part so far. */
function where(p: TapProgress, detail: boolean): string {
  const parts: string[] = [p.phase];
  if (detail && p.iterations) parts.push(`iteration ${p.iterations}`);
  if (detail && p.rounds) parts.push(`round ${p.rounds}: ${p.lastRoundPages} pages`);
  if (p.sinceStop) parts.push(`downtime part ${binaryAmount(p.sinceStop.bytes)} in ${p.sinceStop.ms} ms`);
  return parts.join(' · ');
}

/** The live status line: phase, bytes per channel, the rate since the last one, sections, time. */
class StatusLine {
  private shown = false;
  private last = { bytes: 0, ms: 0 };

  show(p: TapProgress): void {
    const bytes = Object.values(p.channels).reduce((a, b) => a + b, 0);
    const rate = p.elapsedMs > this.last.ms ? ((bytes - this.last.bytes) * 1000) / (p.elapsedMs - this.last.ms) : 0;
    this.last = { bytes, ms: p.elapsedMs };
    const channels = Object.entries(p.channels)
      .map(([k, v]) => `${k} ${binaryAmount(v)}`)
      .join(' · ');
    // the sections that took the most so far (RAM, a VFIO device's state)
    const biggest = Object.entries(p.sectionBytes)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([k, v]) => ` · ${k} ${binaryAmount(v)}`)
      .join('');
    const line = (detail: boolean, sizes: boolean) =>
      `${where(p, detail)} | ${channels || 'waiting'} | ${binaryAmount(rate)}/s | ${p.sections} sections${sizes ? biggest : ''} | ${(p.elapsedMs / 1000).toFixed(1)} s`;
    // one line, never wrapped (a wrapped line cannot be rewritten in place): what does not fit goes,
    // the sections' sizes first, then RAM's iterations and rounds
    const width = Math.max(20, (process.stdout.columns || 80) - 1);
    const fits = [line(true, true), line(true, false), line(false, false)].find((l) => l.length <= width);
    printStdout(`\r\x1b[2K${(fits ?? line(false, false)).slice(0, width)}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    printStdout('\r\x1b[2K');
    this.shown = false;
  }
}

function nonNegativeInteger(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('a whole number, 0 or more');
  return n;
}

function endpoint(v: string): TapEndpoint {
  const m = /^(.*):(\d+)$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || !m[1] || port > 65535) throw new InvalidArgumentError('HOST:PORT, e.g. 127.0.0.1:4444');
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

const PHASE_TEXT: Record<TapPhase, string> = {
  setup: 'setup',
  iterating: 'iterating: the source runs while its memory is sent',
  'stop-and-copy': 'stop-and-copy: the source stopped (the downtime part)',
  postcopy: 'postcopy: the destination runs',
  completed: 'completed: the device state ended',
};

/** Text mode: what a person watching wants, not every RAM part. */
function text(e: TapEvent): string {
  switch (e.event) {
    case 'listening':
      return `listening on ${e.host}:${e.port}\n`;
    case 'connection':
      return `${e.channel}: connected\n`;
    case 'command':
      return `main @0x${e.offset.toString(16)}: ${e.command}\n`;
    case 'eof':
      return `main @0x${e.offset.toString(16)}: QEMU_VM_EOF\n`;
    case 'phase':
      return `main @0x${e.offset.toString(16)}: ${PHASE_TEXT[e.phase]} (${e.elapsedMs} ms in)\n`;
    case 'ram-round':
      return `main @0x${e.offset.toString(16)}: RAM round ${e.round} ended: ${e.pages} pages\n`;
    case 'vfio-tag':
      return `main @0x${e.offset.toString(16)}: ${e.tag} (${e.idstr})\n`;
    case 'multifd-sync':
      return `${e.channel} @0x${e.offset.toString(16)}: MULTIFD_FLAG_SYNC (packet ${e.packetNum})\n`;
    case 'multifd-device-state':
      return `${e.channel} @0x${e.offset.toString(16)}: device state of ${e.idstr} (instance ${e.instanceId})\n`;
    case 'diagnostic': {
      // the main channel's diagnostics name no channel
      const where = e.diagnostic.channel ? `${e.diagnostic.channel} ` : '';
      return `${e.diagnostic.severity} [${e.diagnostic.rule}] ${where}@${e.diagnostic.offsetHex}: ${e.diagnostic.message}\n`;
    }
    case 'decoder-lagged':
      return `${e.channel}: the decoder fell ${e.bytes} bytes behind and stopped; the relay went on\n`;
    case 'decoder-failed':
      return `${e.channel}: the decoder failed (${e.message}); the relay went on\n`;
    case 'stopped':
      return `main @0x${e.offset.toString(16)}: stopped before forwarding a record that breaks ${e.rule} (${e.forwarded} bytes forwarded); both sides closed\n`;
    case 'return-path':
      return `return path @0x${e.offset.toString(16)}: ${e.message}${Object.keys(e.fields).length ? ' ' + JSON.stringify(e.fields) : ''}\n`;
    case 'return-path-undecoded':
      return `return path @0x${e.offset.toString(16)}: no longer decoded (${e.reason}); the relay goes on\n`;
    case 'mutation':
      return `${e.channel} @0x${e.offset.toString(16)}: mutated: ${e.what}\n`;
    case 'closed':
      return `${e.channel}: closed after ${e.bytes} bytes\n`;
    case 'migration':
      return `migration ${e.status}: ${Object.entries(e.channels)
        .map(([k, v]) => `${k} ${v} bytes`)
        .join(', ')}; ${e.diagnostics.length} diagnostics\n`;
    default:
      return '';
  }
}
