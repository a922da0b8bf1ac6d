// Command-line options of the benchmarks (`npm run bench -- <name> --flag value ...`): one parser,
// so every benchmark rejects unknown flags, missing values and out-of-range numbers the same way.

/** `afterMs` -> `--after-ms`: the flag a key is written as. */
const flagOf = (key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * A kind of option value: `meta` is its placeholder in the usage text, `parse(text, flag)`
 * returns the value or throws a `RangeError` naming the flag and the text it got.
 */
function kind(meta, ok, convert, rule) {
  return {
    meta,
    parse(text, flag) {
      const value = text === undefined ? undefined : convert(text);
      if (value === undefined || !ok(value)) {
        throw new RangeError(`${flag} must be ${rule}, got ${JSON.stringify(text ?? null)}`);
      }
      return value;
    },
  };
}

/** An integer in [min, max]. */
export const integer = (min, max = Number.MAX_SAFE_INTEGER) => kind(
  'N',
  (n) => Number.isInteger(n) && n >= min && n <= max,
  Number,
  max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
);

/** `n >= min`, or `n > min` with `above`; finite either way. */
const inRange = (min, above) => (n) => Number.isFinite(n) && (above ? n > min : n >= min);
const rangeText = (min, above) => (above ? `> ${min}` : `>= ${min}`);

/** A finite number >= min: durations in ms. */
export const number = (min) => kind('X', inRange(min, false), Number, `a number ${rangeText(min, false)}`);

/** A comma-separated list of one or more numbers, each finite and >= min (> min with
 * `{ above: true }`): `1000,2000` ms, `1,5` minutes. */
export const numbers = (min, { above = false } = {}) => kind(
  'X,Y,...',
  (xs) => xs.every(inRange(min, above)),
  (text) => text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s))),
  `comma-separated numbers ${rangeText(min, above)}`,
);

/** One of the given words. */
export const oneOf = (...words) => kind(words.join('|'), (w) => words.includes(w), String, `one of ${words.join(', ')}`);

/** Any text (a path, a name). */
export const text = () => kind('TEXT', (s) => s !== '' && !s.startsWith('--'), String, 'a value');

/**
 * Parses `args` (`['--ops', '500', ...]`) against `spec`, `{ key: [kind, default] }`, and returns
 * `{ key: value }` with every key of `spec`, defaults for the flags not given.
 * Throws an `Error` listing the known flags for an unknown one, a `RangeError` for a bad value.
 */
export function parseOptions(args, spec) {
  const byFlag = new Map(Object.keys(spec).map((key) => [flagOf(key), key]));
  const out = Object.fromEntries(Object.entries(spec).map(([key, [, fallback]]) => [key, fallback]));
  for (let i = 0; i < args.length; i += 2) {
    const key = byFlag.get(args[i]);
    if (key === undefined) throw new Error(`unknown option ${args[i]} (options: ${usage(spec)})`);
    out[key] = spec[key][0].parse(args[i + 1], args[i]);
  }
  return out;
}

/** `--ops N --end close|kill`: the flags of `spec` with their placeholders. */
export const usage = (spec) => Object.entries(spec).map(([key, [k]]) => `${flagOf(key)} ${k.meta}`).join(' ');
