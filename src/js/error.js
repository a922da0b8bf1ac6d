// The error class of fennec's runtime failures (src/js/error.rs). Loaded by the wasm-bindgen
// glue as a snippet and re-exported by the package entry (src/js/entry.js -> pkg/index.js), so
// `err instanceof FennecError` holds for errors from either.

/**
 * A runtime failure of a fennec call (never a bad argument: those are `TypeError` /
 * `RangeError`). `code` is stable and meant for programs; `message` is for people.
 * Codes: "not-initialised", "closed", "left", "joined", "signal", "store", "failover".
 */
export class FennecError extends Error {
  /**
   * @param {string} code a stable code, see above
   * @param {string} message what failed, for people
   */
  constructor(code, message) {
    super(message);
    this.name = 'FennecError';
    this.code = code;
  }
}

/** `console.error(message, error)`: how a throwing event callback is reported. */
export function consoleError(message, error) {
  console.error(message, error);
}
