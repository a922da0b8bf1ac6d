// Types of fennec's package entry (pkg/index.d.ts; src/js/entry.js is the code).
import type { FennecErrorCode } from './fennec.js';

export * from './fennec.js';
export { default, initSync } from './fennec.js';

/**
 * A runtime failure of a fennec call; bad arguments are `TypeError`/`RangeError` instead.
 * `code` is stable (see `FennecErrorCode`), `message` is for people.
 */
export class FennecError extends Error {
  constructor(code: FennecErrorCode, message: string);
  readonly name: "FennecError";
  readonly code: FennecErrorCode;
}

/** Whether `init()` (or `initSync()`) has completed; before, every call fails with code "not-initialised". */
export function initialised(): boolean;
