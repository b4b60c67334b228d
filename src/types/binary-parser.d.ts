// binary-parser ships its types, but its package.json "exports" hides them from NodeNext
// resolution of the bare name; re-export them from the file path it does expose.
declare module 'binary-parser' {
  export { Parser } from 'binary-parser/dist/binary_parser.js';
}
