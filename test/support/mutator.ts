/**
 * Deterministic frame generator for the fuzz suite: a seeded PRNG (mulberry32) and mutators that
 * turn valid client frames into broken ones (one field at a time, truncated, huge, deep, unicode,
 * odd numbers, random bytes). Pure: no sockets here.
 */
import { clientPayloadSchemas } from '../../protocol/schemas.js';
import { mulberry32 } from '../../workers/llm-sim-script.js';

export { mulberry32 };

export type Rng = () => number;

export const int = (rng: Rng, n: number) => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)]!;

export type FrameType = keyof typeof clientPayloadSchemas;
export const FRAME_TYPES = Object.keys(clientPayloadSchemas) as FrameType[];

/** One generated frame: text or binary data, and the generator that made it (for the report). */
export interface Generated {
  kind: string;
  data: string | Buffer;
  binary?: boolean;
}

/** Payloads that pass the schema, every optional field present so each one can be broken. */
export function basePayloads(refs: { threadId: string; token: string }): Record<FrameType, Record<string, unknown>> {
  return {
    'message.send': { content: 'hello', thread_id: 'th_fuzz_nothread', agent_id: 'ag_fuzz', client_message_id: 'cm_fuzz', on_busy: 'reject' },
    'thread.create': { title: 'fuzz thread', agent_id: 'ag_fuzz_missing' },
    'thread.list': { cursor: 'c', limit: 10, archived: false },
    'thread.get': { thread_id: refs.threadId },
    'thread.history': { thread_id: refs.threadId, before_seq: 5, limit: 10 },
    'thread.update': { thread_id: refs.threadId, title: 'renamed by fuzz', archived: false },
    'thread.delete': { thread_id: 'th_fuzz_missing' },
    search: { q: 'hello', limit: 5 },
    'thread.subscribe': { thread_id: refs.threadId, after_seq: 0 },
    'thread.unsubscribe': { thread_id: refs.threadId },
    'run.cancel': { run_id: 'run_fuzz_missing' },
    'tool.approve': { run_id: 'run_fuzz_missing', tool_call_id: 'call_fuzz', approved: true, reason: 'fuzz' },
    'auth.refresh': { token: refs.token },
    ping: {},
  };
}

/** Raw JSON number literals JSON.stringify cannot write (some are not JSON at all). */
const RAW_NUMBERS = [
  '1e309', '-1e309', '-0', '-0.0', '1E400', '1e-400', '-1e-400', '123456789012345678901234567890', '0.1e1', '1.0', '2.5e0',
  '9007199254740993', '-9007199254740993', '1e-7', '0e0', 'NaN', 'Infinity', '-Infinity', '0x10', '01', '+1', '.5', '5.', '1e', '--1',
];
/** Strings that look like numbers or specials. */
const NAN_STRINGS = ['NaN', '-NaN', 'Infinity', '-Infinity', '1e309', '-0', 'null', 'undefined', 'true', '0x1F', ' 1', '1 ', '١٢٣', '๑'];
/** Unicode edge cases (lone surrogates are sent escaped: JSON.stringify escapes them). */
const UNICODE = [
  '\ud800', '\udfff', '\udc00\ud800', 'a\ud83d', '\ud83d\ude00', '👩‍👩‍👧‍👦', '🏳️‍🌈', '\u202eevil\u202c', 'مرحبا بالعالم', 'שָׁלוֹם',
  '\u200b\u200c\u200d\ufeff', '\u0000', 'a\u0000b', '\u0001\u001f\u007f', '\u2028\u2029', '\uffff\ufffe', 'Z̷̢̛͓a̶l̵g̸o̷',
  '\ud834\udd1e', 'e\u0301', 'İıß', '\\', '"', '\\u0000', '</script>', '%s%n', "'; drop table threads; --",
];
const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'prototype', 'toLocaleString'];

const RAW_MARK = '__fuzz_raw_';

/** Any JSON-ish value: wrong types, odd numbers, unicode, prototype names. */
export function randomValue(rng: Rng, depth = 0): unknown {
  switch (int(rng, depth > 2 ? 9 : 11)) {
    case 0: return null;
    case 1: return rng() < 0.5;
    case 2: return pick(rng, [0, -1, 1, 1.5, -2.5, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, 1e21, 128, 129]);
    case 3: return `${RAW_MARK}${pick(rng, RAW_NUMBERS)}__`;
    case 4: return pick(rng, NAN_STRINGS);
    case 5: return pick(rng, UNICODE);
    case 6: return pick(rng, ['', ' ', 'x', 'has space', 'th_x', 'x'.repeat(129), 'x'.repeat(501), 'x'.repeat(4000)]);
    case 7: return pick(rng, PROTO_NAMES);
    case 8: return randomString(rng, int(rng, 40));
    case 9: return Array.from({ length: int(rng, 4) }, () => randomValue(rng, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = int(rng, 4); i > 0; i--) object[pick(rng, ['a', 'type', 'payload', 'id', '__proto__', 'content', randomString(rng, 6)])] = randomValue(rng, depth + 1);
      return object;
    }
  }
}

/** Random code points from every plane, lone surrogates included. */
export function randomString(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    const r = rng();
    if (r < 0.6) out += String.fromCharCode(0x20 + int(rng, 0x5f));
    else if (r < 0.7) out += String.fromCharCode(int(rng, 0x20));
    else if (r < 0.8) out += String.fromCharCode(0xd800 + int(rng, 0x800));
    else out += String.fromCodePoint(int(rng, 0x110000));
  }
  return out;
}

/** JSON text of `value`, with raw-number markers replaced by their literal. */
export function toJson(value: unknown): string {
  return JSON.stringify(value).replace(/"__fuzz_raw_(.*?)__"/g, (_, raw: string) => raw);
}

function setPath(frame: Record<string, any>, path: string[], value: unknown | typeof REMOVE): void {
  let target = frame;
  for (const key of path.slice(0, -1)) target = target[key];
  const last = path[path.length - 1]!;
  if (value === REMOVE) delete target[last];
  else Object.defineProperty(target, last, { value, enumerable: true, writable: true, configurable: true });
}
const REMOVE = Symbol('remove');

export class FrameGenerator {
  private counter = 0;
  readonly bases: Record<FrameType, Record<string, unknown>>;

  constructor(readonly rng: Rng, refs: { threadId: string; token: string }, readonly maxFrameBytes: number) {
    this.bases = basePayloads(refs);
  }

  nextId(): string {
    return `f${++this.counter}`;
  }

  /** A valid frame of `type` with a fresh id. */
  valid(type: FrameType): Record<string, any> {
    return { type, id: this.nextId(), payload: structuredClone(this.bases[type]) };
  }

  /** Exactly one field of a valid frame broken: a wrong value, removed, or an unknown one added. */
  oneFieldBroken(type: FrameType): Generated {
    const rng = this.rng;
    const frame = this.valid(type);
    const paths: string[][] = [['type'], ['id'], ['payload'], ...Object.keys(frame.payload).map((k) => ['payload', k])];
    const path = pick(rng, paths);
    const r = rng();
    if (r < 0.15) setPath(frame, path, REMOVE);
    else if (r < 0.25) setPath(frame, [...path.slice(0, -1), pick(rng, ['extra', 'Content', '__proto__', 'constructor', randomString(rng, 5)])], randomValue(rng));
    else setPath(frame, path, randomValue(rng));
    return { kind: `broken:${type}:${path.join('.')}`, data: toJson(frame) };
  }

  truncated(type: FrameType): Generated {
    const text = toJson(this.valid(type));
    return { kind: 'truncated', data: text.slice(0, int(this.rng, text.length)) };
  }

  randomBytes(binary: boolean): Generated {
    const bytes = Buffer.alloc(int(this.rng, 300));
    for (let i = 0; i < bytes.length; i++) bytes[i] = int(this.rng, 256);
    if (binary) return { kind: 'bytes:binary', data: bytes, binary: true };
    // As text: the bytes read as Latin-1, or random code points (ws sends them as UTF-8).
    return { kind: 'bytes:text', data: this.rng() < 0.5 ? bytes.toString('latin1') : randomString(this.rng, bytes.length) };
  }

  /** A valid frame sent in a binary frame: still refused. */
  binaryValid(type: FrameType): Generated {
    return { kind: 'binary:valid', data: Buffer.from(toJson(this.valid(type))), binary: true };
  }

  unknownType(): Generated {
    const rng = this.rng;
    const type = pick(rng, [
      ...PROTO_NAMES, 'Ping', 'PING', 'ping ', ' ping', 'message.sen', 'message.send\u0000', 'thread.', '.', 'a'.repeat(64),
      'thread.explode', 'message\u002esend', 'mеssage.send' /* Cyrillic е */, '\ud800', '🙂', '\u202eping', randomString(rng, 1 + int(rng, 63)),
    ]);
    const frame: Record<string, unknown> = { type, id: this.nextId() };
    if (rng() < 0.8) frame.payload = rng() < 0.5 ? {} : { x: randomValue(rng) };
    return { kind: 'unknown-type', data: toJson(frame) };
  }

  /** Nested arrays/objects around or inside a frame, from shallow to far past MAX_JSON_DEPTH. */
  deep(): Generated {
    const rng = this.rng;
    const depth = pick(rng, [1, 8, 14, 15, 16, 17, 18, 64, 1000, 10_000]);
    const open = rng() < 0.5 ? '[' : '{"a":';
    const close = open === '[' ? ']' : '}';
    const inner = `${open.repeat(depth)}1${close.repeat(depth)}`;
    const r = rng();
    let data: string;
    if (r < 0.3) data = inner;
    else if (r < 0.6) data = `{"type":"ping","id":"${this.nextId()}","payload":{"x":${inner}}}`;
    else if (r < 0.8) data = `{"type":"thread.list","id":"${this.nextId()}","payload":{"cursor":${inner}}}`;
    else data = open.repeat(depth); // unclosed
    // Brackets inside strings do not count as depth.
    if (rng() < 0.2) data = `{"type":"search","id":"${this.nextId()}","payload":{"q":${JSON.stringify('['.repeat(Math.min(depth, 400)))}}}`;
    return { kind: `deep:${depth}`, data };
  }

  /** A frame between half of MAX_FRAME_BYTES and exactly MAX_FRAME_BYTES bytes. */
  huge(): Generated {
    const rng = this.rng;
    const target = this.maxFrameBytes - pick(rng, [0, 0, 1, 3, 100, 1000, Math.floor(this.maxFrameBytes / 2)]);
    const unit = pick(rng, ['x', 'é', '😀', '\u0000', '\ud800', '[', ' ']);
    const field = pick(rng, ['content', 'title', 'q', 'token', 'cursor', 'thread_id', 'unknown', 'type', 'id', 'key']);
    const shellOf = (s: string): string => {
      const id = this.counter + 1;
      if (field === 'type') return `{"type":${JSON.stringify(s)},"id":"f${id}","payload":{}}`;
      if (field === 'id') return `{"type":"ping","id":${JSON.stringify(s)},"payload":{}}`;
      if (field === 'key') return `{"type":"ping","id":"f${id}","payload":{${JSON.stringify(s)}:1}}`;
      const type = field === 'content' || field === 'thread_id' ? 'message.send' : field === 'title' ? 'thread.create' : field === 'q' ? 'search' : field === 'token' ? 'auth.refresh' : 'ping';
      return `{"type":"${type}","id":"f${id}","payload":{${JSON.stringify(field)}:${JSON.stringify(s)}}}`;
    };
    const unitBytes = Buffer.byteLength(JSON.stringify(unit)) - 2;
    const room = target - Buffer.byteLength(shellOf(''));
    const s = unit.repeat(Math.max(0, Math.floor(room / unitBytes)));
    let cut = s;
    let text = shellOf(cut);
    while (Buffer.byteLength(text) > this.maxFrameBytes) text = shellOf((cut = cut.slice(0, -1 - int(rng, 8))));
    this.nextId();
    return { kind: `huge:${field}`, data: text };
  }

  /** A frame of exactly `bytes` bytes (over the limit on purpose). */
  oversize(bytes: number): string {
    const shell = toJson({ type: 'ping', id: this.nextId(), payload: { pad: '' } });
    return shell.replace('"pad":""', `"pad":"${'x'.repeat(bytes - Buffer.byteLength(shell))}"`);
  }

  /** A valid frame with one string field replaced by unicode edge cases (raw or escaped). */
  unicode(type: FrameType): Generated {
    const rng = this.rng;
    const frame = this.valid(type);
    const keys = Object.keys(frame.payload).filter((k) => typeof frame.payload[k] === 'string');
    const value = Array.from({ length: 1 + int(rng, 3) }, () => pick(rng, UNICODE)).join('');
    if (keys.length && rng() < 0.8) frame.payload[pick(rng, keys)] = value;
    else frame.id = value;
    let text = toJson(frame);
    // Sometimes escape every non-ASCII character the way a strict client would.
    if (rng() < 0.3) text = text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    if (rng() < 0.05) text = `\ufeff${text}`; // a BOM is not JSON
    return { kind: 'unicode', data: text };
  }

  /** A numeric field of a valid frame set to an odd literal. */
  numbers(): Generated {
    const rng = this.rng;
    const [type, field] = pick(rng, [
      ['thread.list', 'limit'], ['thread.history', 'before_seq'], ['thread.history', 'limit'], ['search', 'limit'], ['thread.subscribe', 'after_seq'],
    ] as const);
    const frame = this.valid(type);
    frame.payload[field] = rng() < 0.7 ? `${RAW_MARK}${pick(rng, RAW_NUMBERS)}__` : pick(rng, NAN_STRINGS);
    return { kind: `number:${type}.${field}`, data: toJson(frame) };
  }

  /** Whole-envelope oddities: not an object, wrong payload type, duplicate keys, extra fields. */
  envelope(): Generated {
    const rng = this.rng;
    const id = this.nextId();
    return {
      kind: 'envelope',
      data: pick(rng, [
        'null', 'true', '42', '"ping"', '[]', '{}', `{"type":"ping","id":"${id}","payload":[]}`, `{"type":"ping","id":"${id}","payload":null}`,
        `{"type":"ping","id":"${id}","payload":"{}"}`, `{"type":"ping","type":"nope","id":"${id}"}`, `{"type":"nope","type":"ping","id":"${id}"}`,
        `{"type":"ping","id":"${id}","payload":{},"extra":1}`, `{"__proto__":{"type":"ping"},"id":"${id}"}`, `{"type":["ping"],"id":"${id}"}`,
        `{"type":"ping","id":${int(rng, 1000)}}`, `{"type":"ping","id":""}`, `{"type":"","id":"${id}"}`, ` {"type":"ping","id":"${id}"} `,
        `{"type":"ping","id":"${id}"}{"type":"ping"}`, `{"type":"ping","id":"${id}",}`, `{'type':'ping'}`, `{"type":"ping","id":"${id}","payload":{"__proto__":{}}}`,
        `{"type":"ping","id":"${id}","payload":{"constructor":{"prototype":{"polluted":1}}}}`, '\n\t ', '',
      ]),
    };
  }

  /** One barrage frame, mixing every generator. */
  next(): Generated {
    const rng = this.rng;
    const r = rng();
    const type = pick(rng, FRAME_TYPES);
    if (r < 0.30) return this.oneFieldBroken(type);
    if (r < 0.40) return this.truncated(type);
    if (r < 0.47) return this.randomBytes(false);
    if (r < 0.52) return this.randomBytes(true);
    if (r < 0.54) return this.binaryValid(type);
    if (r < 0.60) return this.unknownType();
    if (r < 0.66) return this.deep();
    if (r < 0.67) return this.huge();
    if (r < 0.77) return this.unicode(type);
    if (r < 0.85) return this.numbers();
    if (r < 0.93) return this.envelope();
    return { kind: `valid:${type}`, data: toJson(this.valid(type)) };
  }
}
