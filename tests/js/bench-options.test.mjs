// scripts/bench/options.mjs: the benchmarks' one option parser. A bad flag or value must stop
// a benchmark before it starts browsers, with a message naming the flag.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { integer, number, numbers, oneOf, parseOptions, text, usage } from '../../scripts/bench/options.mjs';

const SPEC = {
  ops: [integer(500), 30_000],
  msgKib: [integer(1, 4000), 1024],
  afterMs: [numbers(0), [1000, 2000]],
  minutes: [numbers(0, { above: true }), [1]],
  pauseMs: [number(0), 200],
  end: [oneOf('close', 'kill'), 'close'],
  dir: [text(), 'pkg'],
};

test('flags not given keep their defaults', () => {
  assert.deepEqual(parseOptions([], SPEC), {
    ops: 30_000, msgKib: 1024, afterMs: [1000, 2000], minutes: [1], pauseMs: 200, end: 'close', dir: 'pkg',
  });
});

test('camelCase keys are written as kebab-case flags and parsed by their kind', () => {
  const got = parseOptions(
    ['--ops', '500', '--msg-kib', '4000', '--after-ms', '0,1500.5', '--minutes', '0.5,2',
      '--pause-ms', '0', '--end', 'kill', '--dir', '/tmp/x'],
    SPEC,
  );
  assert.deepEqual(got, {
    ops: 500, msgKib: 4000, afterMs: [0, 1500.5], minutes: [0.5, 2], pauseMs: 0, end: 'kill', dir: '/tmp/x',
  });
});

test('an unknown flag is refused with the list of known ones', () => {
  assert.throws(() => parseOptions(['--rounds', '3'], SPEC), {
    message: 'unknown option --rounds (options: --ops N --msg-kib N --after-ms X,Y,... --minutes X,Y,... ' +
      '--pause-ms X --end close|kill --dir TEXT)',
  });
  assert.equal(usage({ top: [integer(0), 0] }), '--top N');
});

test('values out of range, of the wrong kind or missing are refused, naming flag and text', () => {
  const refused = [
    [['--ops', '499'], '--ops must be an integer >= 500, got "499"'],
    [['--ops', '600.5'], '--ops must be an integer >= 500, got "600.5"'],
    [['--ops'], '--ops must be an integer >= 500, got null'],
    [['--msg-kib', '4001'], '--msg-kib must be an integer from 1 to 4000, got "4001"'],
    [['--after-ms', '1000,,2000'], '--after-ms must be comma-separated numbers >= 0, got "1000,,2000"'],
    [['--after-ms', '-1'], '--after-ms must be comma-separated numbers >= 0, got "-1"'],
    [['--minutes', '0'], '--minutes must be comma-separated numbers > 0, got "0"'],
    [['--pause-ms', 'Infinity'], '--pause-ms must be a number >= 0, got "Infinity"'],
    [['--end', 'crash'], '--end must be one of close, kill, got "crash"'],
    [['--dir', '--ops'], '--dir must be a value, got "--ops"'],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => parseOptions(args, SPEC), { name: 'RangeError', message }, args.join(' '));
  }
});
