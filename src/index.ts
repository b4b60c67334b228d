/**
 * migstream as a library: `import { validateFile, openMainFile } from 'migstream'`. The same
 * use cases the command line runs (src/app/), the stream codec underneath them, and the types
 * of what they return. Errors are typed: StreamError for a bad stream (with offset and section
 * path), UsageError for what a caller asked wrongly (a missing file, a bad option).
 */
export { dumpStream, type DumpFormat, type DumpOutcome, type DumpRequest } from './app/dump.js';
export { diffFiles, type DiffResult, type RamBlockDiff, type ValueChange } from './app/diff.js';
export {
  compareFormats,
  compareLayouts,
  type FormatDiff,
  type FormatFacts,
  type LayoutChange,
} from './formats/format-diff.js';
export { encodeIrFile, type EncodeOutcome } from './app/encode.js';
export { generate, readScenario, writeGenerated, type GeneratedStreams } from './app/gen.js';
export { openSource, openStreamFile, readVmsdFile, type StreamRequest } from './app/open.js';
export { destinationProfile, readProfile } from './app/profile.js';
export { roundtripFile } from './app/roundtrip.js';
export { streamStats, type StatsResult } from './app/stats.js';
export { streamFilesOf, validateFile, type ValidateRequest } from './app/validate.js';

export {
  encodeRecords,
  encodeToBytes,
  openMainFile,
  openMainStream,
  roundtripSource,
  type OpenedStream,
  type OpenOptions,
  type RoundtripResult,
} from './codec/open.js';
export { BufferSource, FileSource, type ByteSource } from './io/source.js';
export { ReferenceLoader, NEWEST_QEMU, type LoadOptions } from './loader/load.js';
export { validateMain, validateMultifdChannel, type ValidationResult } from './loader/validate.js';
export {
  parseProfile,
  profileFromStream,
  PROFILE_FORMAT,
  type DestinationProfile,
  type ProfileDevice,
} from './loader/profile.js';
export { diagnosticJson, type Diagnostic, type DiagnosticJson } from './model/diagnostic.js';
export { StreamError, UsageError, type StreamErrorJson } from './model/errors.js';
export type * from './model/records.js';
export type * from './model/multifd-records.js';
export type { ReturnPathRecord } from './model/returnpath-records.js';
export type { CprEndRecord, CprFdRecord, CprHeaderRecord, CprRecord, CprTrailingRecord } from './model/cpr-records.js';
export type { AnyRecord, ChannelKind } from './model/channel-records.js';
export { RULES, type RuleId, type RuleSeverity } from '../grammar/rules.js';
export type { FieldValue, LayoutValue } from '../grammar/layout.js';
export type { DeviceRef, FieldShape } from './formats/format-diff.js';
export type { PhaseStats } from './formats/phases.js';
export type { StreamSummary } from './formats/summary.js';
export type { MultifdRound, MultifdSummary } from './multifd/summary.js';
export type { MultifdChannelStats, ReturnPathMessageStats, StatsRequest } from './app/stats.js';
export type { Scenario } from './generator/scenario.js';
export type { SideChannels } from './loader/validate.js';
export type { ChannelInput } from './loader/multifd-load.js';
export type { MainChannelFacts } from './loader/load.js';
export type { DeviceDescription, FieldDescription, VmDescription, VmsdDescription } from './vmstate/vmdesc.js';
export type { VmstateElement, VmstateField, VmstateNode, VmstateSubsection } from './model/vmstate-nodes.js';
export type { SectionKind } from '../grammar/savevm.js';
export type { Mutation, RecordMatch, VfioDeviceScenario } from './generator/scenario.js';
export type { RamBlockStats, SectionStats } from './formats/summary.js';
export type { WriteText } from './app/dump.js';
export type { ByteSink } from './io/sink.js';
export { decode, type DecodeRequest, type StreamInput } from './app/decode.js';
