// `process` for the browser bundle of the Yjs bench page: simple-peer's dependencies
// (readable-stream, debug) read process.env / process.nextTick as under browserify.
export const process = {
  env: {},
  browser: true,
  version: '',
  nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
};
