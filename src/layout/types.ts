// The value types live with the grammar vocabulary (grammar/layout.ts); re-exported for the interpreters.
export type { FieldValue, LayoutValue } from '../../grammar/layout.js';
