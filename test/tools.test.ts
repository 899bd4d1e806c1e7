import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { calculatorTool, evaluateExpression, CalcError } from '../workers/tools/calculator.js';
import { createClockTool, formatInZone } from '../workers/tools/clock.js';
import { ToolError, ToolRegistry, builtinTools, createDefaultRegistry, type Tool } from '../workers/tools/registry.js';

const ctx = () => ({ signal: new AbortController().signal });

async function toolError(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ToolError);
    return e as ToolError;
  }
  throw new Error('expected a ToolError');
}

test('calculator: arithmetic and precedence', () => {
  const cases: Array<[string, number]> = [
    ['1+2*3', 7],
    ['(1+2)*3', 9],
    ['2*(3+4)', 14],
    ['10 - 4 - 3', 3],
    ['100 / 10 / 5', 2],
    ['7/2', 3.5],
    ['10 % 4', 2],
    ['2^10', 1024],
    ['2^3^2', 512],
    ['-2^2', -4],
    ['(-2)^2', 4],
    ['2^-1', 0.5],
    ['-(3+4)', -7],
    ['--3', 3],
    ['3 * -2', -6],
    ['1.5*2', 3],
    ['.5 + .25', 0.75],
    ['  42  ', 42],
    ['((((1))))', 1],
    ['('.repeat(90) + '1' + ')'.repeat(90), 1],
  ];
  for (const [expr, want] of cases) assert.is(evaluateExpression(expr), want, expr);
});

test('calculator: errors', () => {
  const bad: Array<[string, 'syntax' | 'math', RegExp]> = [
    ['1/0', 'math', /division by zero/i],
    ['5 % 0', 'math', /modulo by zero/i],
    ['10^1000', 'math', /finite/i],
    ['', 'syntax', /empty/i],
    ['2+', 'syntax', /end of expression/],
    ['(1+2', 'syntax', /expected '\)'/i],
    ['1 2', 'syntax', /unexpected '2'/i],
    ['abc', 'syntax', /'a'/],
    ['1.2.3', 'syntax', /malformed number/i],
    ['2**3', 'syntax', /'\*'/],
    ['x'.repeat(1001), 'syntax', /too long/i],
    ['process.exit()', 'syntax', /'p'/],
    ['('.repeat(200) + '1' + ')'.repeat(200), 'syntax', /nested too deeply/i],
  ];
  for (const [expr, kind, re] of bad) {
    try {
      evaluateExpression(expr);
      assert.unreachable(`${expr} should fail`);
    } catch (e) {
      assert.instance(e, CalcError, expr);
      assert.is((e as CalcError).kind, kind, expr);
      assert.match((e as Error).message, re, expr);
    }
  }
});

test('calculator tool: formats results and maps errors to ToolError codes', async () => {
  assert.is(await calculatorTool.execute({ expression: '0.1+0.2' }, ctx()), '0.3');
  assert.is(await calculatorTool.execute({ expression: '2*(3+4)' }, ctx()), '14');
  assert.is(await calculatorTool.execute({ expression: '-0' }, ctx()), '0');
  assert.is(await calculatorTool.execute({ expression: '1/3' }, ctx()), '0.333333333333');
  assert.is((await toolError(calculatorTool.execute({ expression: '1/0' }, ctx()))).code, 'tool_failed');
  const syntax = await toolError(calculatorTool.execute({ expression: '2+*3' }, ctx()));
  assert.is(syntax.code, 'tool_bad_arguments');
  assert.match(syntax.message, '2+*3');
});

test('clock: UTC ISO by default, zoned format, bad zone', async () => {
  const fixed = new Date('2026-11-23T09:00:01.000Z');
  const clock = createClockTool(() => fixed);
  assert.is(await clock.execute({}, ctx()), '2026-11-23T09:00:01.000Z');
  assert.is(await clock.execute({ timezone: 'Europe/Paris' }, ctx()), '2026-11-23T10:00:01+01:00 (Europe/Paris)');
  assert.is(await clock.execute({ timezone: 'America/New_York' }, ctx()), '2026-11-23T04:00:01-05:00 (America/New_York)');
  assert.is(await clock.execute({ timezone: 'Asia/Kolkata' }, ctx()), '2026-11-23T14:30:01+05:30 (Asia/Kolkata)');
  assert.is(formatInZone(fixed, 'UTC'), '2026-11-23T09:00:01+00:00 (UTC)');
  assert.is(formatInZone(fixed, 'europe/paris'), '2026-11-23T10:00:01+01:00 (Europe/Paris)');
  assert.is(formatInZone(new Date('2026-07-01T00:00:00Z'), 'Europe/Paris'), '2026-07-01T02:00:00+02:00 (Europe/Paris)');
  const e = await toolError(clock.execute({ timezone: 'Mars/Olympus' }, ctx()));
  assert.is(e.code, 'tool_bad_arguments');
  assert.match(e.message, 'Mars/Olympus');
  // the default tool reads the real clock
  const now = await builtinTools.find((t) => t.name === 'get_current_time')!.execute({}, ctx());
  assert.ok(Math.abs(Date.parse(now) - Date.now()) < 60_000);
});

test('registry: names, get, openaiTools', () => {
  const reg = createDefaultRegistry();
  assert.equal(reg.names(), ['get_current_time', 'calculator']);
  assert.is(reg.get('calculator')?.name, 'calculator');
  assert.is(reg.get('nope'), undefined);
  const all = reg.openaiTools();
  assert.is(all.length, 2);
  assert.equal(all[1], {
    type: 'function',
    function: { name: 'calculator', description: calculatorTool.description, parameters: calculatorTool.parameters as any },
  });
  assert.equal(reg.openaiTools(['calculator']).map((t) => t.function.name), ['calculator']);
  assert.throws(() => reg.openaiTools(['missing']), (e: unknown) => e instanceof ToolError && e.code === 'tool_not_found');
  assert.throws(() => new ToolRegistry([calculatorTool, calculatorTool]), /Duplicate/);
});

test('registry.run: runs valid calls, empty arguments mean {}', async () => {
  const reg = createDefaultRegistry();
  assert.is(await reg.run('calculator', '{"expression":"2*(3+4)"}', ctx()), '14');
  const t = await reg.run('get_current_time', '', ctx());
  assert.match(t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(await reg.run('get_current_time', '{"timezone":"Asia/Tokyo"}', ctx()), /\+09:00 \(Asia\/Tokyo\)$/);
});

test('registry.run: validation errors', async () => {
  const reg = createDefaultRegistry();
  const nf = await toolError(reg.run('nope', '{}', ctx()));
  assert.is(nf.code, 'tool_not_found');
  assert.match(nf.message, 'calculator');

  const cases: Array<[string, string, RegExp]> = [
    ['calculator', '{"broken": tru', /not valid JSON/],
    ['calculator', '[1]', /must be a JSON object/],
    ['calculator', 'null', /must be a JSON object/],
    ['calculator', '{}', /must have required property 'expression'/],
    ['calculator', '{"expression": 5}', /arguments\/expression must be string/],
    ['calculator', '{"expression": "1", "extra": 1}', /must NOT have additional properties/],
    ['get_current_time', '{"timezone": ""}', /timezone/],
    ['get_current_time', '{"timezone": "Not/AZone"}', /Not\/AZone/],
    ['calculator', '{"expression": "1+"}', /Cannot evaluate/],
  ];
  for (const [name, raw, re] of cases) {
    const e = await toolError(reg.run(name, raw, ctx()));
    assert.is(e.code, 'tool_bad_arguments', raw);
    assert.match(e.message, re, raw);
  }
});

test('registry.run: failures become tool_failed; aborts propagate', async () => {
  const boom: Tool = {
    name: 'boom',
    description: 'always fails',
    parameters: { type: 'object', properties: {} },
    async execute() {
      throw new Error('kaboom');
    },
  };
  const slow: Tool = {
    name: 'slow',
    description: 'waits for abort',
    parameters: { type: 'object', properties: {} },
    execute(_args, { signal }) {
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    },
  };
  const reg = new ToolRegistry([boom, slow, ...builtinTools]);
  const e = await toolError(reg.run('boom', '{}', ctx()));
  assert.is(e.code, 'tool_failed');
  assert.match(e.message, 'kaboom');
  assert.is((await toolError(reg.run('calculator', '{"expression":"1/0"}', ctx()))).code, 'tool_failed');

  const ac = new AbortController();
  const p = reg.run('slow', '{}', { signal: ac.signal });
  ac.abort(new Error('cancelled by test'));
  try {
    await p;
    assert.unreachable('should reject');
  } catch (err) {
    assert.not.instance(err, ToolError);
    assert.is((err as Error).message, 'cancelled by test');
  }
  try {
    await reg.run('calculator', '{"expression":"1"}', { signal: ac.signal });
    assert.unreachable('already aborted');
  } catch (err) {
    assert.is((err as Error).message, 'cancelled by test');
  }
});

test('registry: invalid schema fails at construction', () => {
  const broken: Tool = { name: 'x', description: '', parameters: { type: 'nonsense' }, execute: async () => '' };
  assert.throws(() => new ToolRegistry([broken]));
});

test.run();
