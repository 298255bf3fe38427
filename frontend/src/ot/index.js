// The client-side OT module of collabd: text operations in the wire format,
// code point <-> UTF-16 conversion, and the client state machine. Pure: no
// I/O and no CodeMirror (see codemirror.js for the adapter).

export * from './codepoints.js';
export * from './operation.js';
export * from './changes.js';
export * from './client.js';
