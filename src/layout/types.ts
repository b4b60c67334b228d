/** Decoded value of one layout field. be64 is a BigInt here: layouts are off the hot path. */
export type FieldValue = number | bigint | string | Uint8Array | LayoutValue[];
export type LayoutValue = { [name: string]: FieldValue };
