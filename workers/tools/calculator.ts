/**
 * `calculator` tool: a small, safe arithmetic evaluator (recursive descent, no eval).
 *
 * Grammar (whitespace ignored):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary ('^' unary)?          right-associative; -2^2 = -4, 2^-1 = 0.5
 *   primary := number | '(' expr ')'
 *   number  := digits ['.' digits] | '.' digits
 * Results are rounded to 12 significant digits (so 0.1+0.2 gives "0.3").
 * Syntax errors -> ToolError tool_bad_arguments; division/modulo by zero and
 * non-finite results -> ToolError tool_failed.
 */
import { ToolError, type Tool } from './tool.js';

export class CalcError extends Error {
  override readonly name = 'CalcError';
  constructor(readonly kind: 'syntax' | 'math', message: string) {
    super(message);
  }
}

const MAX_LENGTH = 1000;
const MAX_DEPTH = 100;

export function evaluateExpression(input: string): number {
  if (input.length > MAX_LENGTH) throw new CalcError('syntax', `Expression is too long (max ${MAX_LENGTH} characters).`);
  let pos = 0;
  let depth = 0;

  const skip = () => {
    while (pos < input.length && /\s/.test(input[pos]!)) pos++;
  };
  const peek = (): string | undefined => {
    skip();
    return input[pos];
  };
  const describe = (): string => (pos >= input.length ? 'end of expression' : `'${input[pos]}' at position ${pos + 1}`);

  function expr(): number {
    if (++depth > MAX_DEPTH) throw new CalcError('syntax', 'Expression is nested too deeply.');
    let v = term();
    for (let c = peek(); c === '+' || c === '-'; c = peek()) {
      pos++;
      const r = term();
      v = c === '+' ? v + r : v - r;
    }
    depth--;
    return v;
  }

  function term(): number {
    let v = unary();
    for (let c = peek(); c === '*' || c === '/' || c === '%'; c = peek()) {
      pos++;
      const r = unary();
      if ((c === '/' || c === '%') && r === 0) throw new CalcError('math', c === '/' ? 'Division by zero.' : 'Modulo by zero.');
      v = c === '*' ? v * r : c === '/' ? v / r : v % r;
    }
    return v;
  }

  function unary(): number {
    const c = peek();
    if (c === '-' || c === '+') {
      pos++;
      if (++depth > MAX_DEPTH) throw new CalcError('syntax', 'Expression is nested too deeply.');
      const v = unary();
      depth--;
      return c === '-' ? -v : v;
    }
    return power();
  }

  function power(): number {
    const base = primary();
    if (peek() === '^') {
      pos++;
      if (++depth > MAX_DEPTH) throw new CalcError('syntax', 'Expression is nested too deeply.');
      const exp = unary();
      depth--;
      return Math.pow(base, exp);
    }
    return base;
  }

  function primary(): number {
    const c = peek();
    if (c === '(') {
      pos++;
      const v = expr();
      if (peek() !== ')') throw new CalcError('syntax', `Expected ')' but found ${describe()}.`);
      pos++;
      return v;
    }
    const m = /^(?:\d+(?:\.\d+)?|\.\d+)/.exec(input.slice(pos));
    if (m) {
      pos += m[0].length;
      if (input[pos] === '.') throw new CalcError('syntax', `Malformed number at position ${pos + 1}.`);
      return Number(m[0]);
    }
    throw new CalcError('syntax', `Expected a number or '(' but found ${describe()}.`);
  }

  if (peek() === undefined) throw new CalcError('syntax', 'Expression is empty.');
  const value = expr();
  if (peek() !== undefined) throw new CalcError('syntax', `Unexpected ${describe()}.`);
  if (!Number.isFinite(value)) throw new CalcError('math', 'Result is not a finite number.');
  return value;
}

/** Formats a result: 12 significant digits, no "-0". */
export function formatNumber(v: number): string {
  const r = Number(v.toPrecision(12));
  return String(Object.is(r, -0) ? 0 : r);
}

export const calculatorTool: Tool<{ expression: string }> = {
  name: 'calculator',
  description:
    'Evaluate an arithmetic expression. Supports + - * / % ^ (power), parentheses, unary minus and decimals. Returns the numeric result.',
  parameters: {
    type: 'object',
    properties: {
      expression: { type: 'string', minLength: 1, maxLength: MAX_LENGTH, description: 'Arithmetic expression, e.g. "2*(3+4)".' },
    },
    required: ['expression'],
    additionalProperties: false,
  },
  async execute({ expression }) {
    try {
      return formatNumber(evaluateExpression(expression));
    } catch (e) {
      if (e instanceof CalcError) {
        throw new ToolError(e.kind === 'syntax' ? 'tool_bad_arguments' : 'tool_failed', `Cannot evaluate "${expression}": ${e.message}`);
      }
      throw e;
    }
  },
};
