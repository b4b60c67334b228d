/**
 * What `migstream gen` builds: a migration as QEMU's source would write it, described by
 * the settings that shape the wire (QEMU version, capabilities, devices). JSON input.
 */
export interface VfioDeviceScenario {
  /** qdev path, the idstr becomes "<path>/vfio" */
  path: string;
  /** 'v1' (QEMU <= 7.2, migration region) or 'v2' (8.0+) */
  protocol?: 'v1' | 'v2';
  /** v2: device data read in each precopy iteration (one read per PART); empty: no PRE_COPY support */
  precopy?: number[];
  /** initial bytes: DEV_INIT_DATA_SENT goes out in the PART where they have all been sent (switchover-ack on) */
  initialBytes?: number;
  /** stop-copy reads at switchover */
  stopCopy?: number[];
  /** the device transfers its switchover state over multifd (10.0+) */
  multifd?: boolean;
  /** 10.1+: x-migration-load-config-after-iter on (FULL carries DEV_CONFIG_LOAD_READY) */
  loadConfigAfterIter?: boolean;
  config?: { express?: boolean; msixVectors?: number; display?: boolean };
}

/** A machine to generate a stream of (`migstream gen`): the model, VFIO devices, multifd channels and mutations. */
export interface Scenario {
  /** QEMU release whose behaviour to model, e.g. "8.1" */
  qemu: string;
  machine?: string;
  /** source capabilities (QEMU names): return-path, switchover-ack, multifd, ... */
  capabilities?: string[];
  /** RAM: one block of this many bytes (zero pages in setup, a few normal pages at completion) */
  ramBytes?: number;
  /** precopy iterations */
  iterations?: number;
  /** multifd channels (with capability multifd) */
  multifdChannels?: number;
  vfio?: VfioDeviceScenario[];
  /** seed of the device-data bytes */
  seed?: number;
  /** edits applied after building, to make invalid streams: see generator/mutate.ts */
  mutations?: Mutation[];
}

/** An edit applied to the generated records before they are encoded (to make invalid streams on purpose). */
export type Mutation =
  | { op: 'drop'; match: RecordMatch }
  | { op: 'replaceTag'; match: RecordMatch; tag: string }
  | { op: 'insertTagAfter'; match: RecordMatch; tag: string }
  | { op: 'setIrqState'; value: number }
  | {
      op:
        | 'multifdDuplicateIdx'
        | 'multifdDropIdx'
        | 'multifdVersion'
        | 'multifdInvalidIdx'
        | 'multifdMoveConfigFirst'
        | 'multifdConfigFlag'
        | 'multifdRenameDevice'
        | 'multifdSyncDeviceState'
        | 'multifdUnterminatedIdstr';
      /** which device-state buffer, in idx order (default 0) */
      index?: number;
    };

/** Which generated record a mutation applies to: by kind, tag, RAM op or section, and which match. */
export interface RecordMatch {
  kind: string;
  tag?: string;
  /** RAM records: the op (e.g. "multifd_flush") */
  op?: string;
  section?: string;
  /** nth match (0-based); default 0 */
  nth?: number;
}
