/**
 * Schemas typed against their TypeScript types (protocol/typed-schema.ts). What matters here is
 * checked by tsc (`npm run typecheck` runs over test/): each `@ts-expect-error` line below is a
 * schema that must not compile, and tsc fails if one of them ever does. The protocol's own schemas
 * (requests, frames both ways, events, ack results) go through the same check where they are
 * declared; the run-time test only confirms the check costs nothing at run time.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { schemaOf, type Same } from '../protocol/typed-schema.js';
import { clientPayloadSchemas, eventPayloadSchemas } from '../protocol/schemas.js';
import { requestSchemas } from '../protocol/resources.js';
import type { ClientPayloads, EventPayloads, ThreadCreatePayload } from '../protocol/frames.js';

interface Note {
  text: string;
  pinned?: boolean;
}

const note = schemaOf<Note>()({
  type: 'object',
  properties: { text: { type: 'string' }, pinned: { type: 'boolean' } },
  required: ['text'],
  additionalProperties: false,
});

// @ts-expect-error a field the type has and the schema lacks (pinned)
schemaOf<Note>()({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false });

// @ts-expect-error a field the schema has and the type lacks (colour)
schemaOf<Note>()({ type: 'object', properties: { text: { type: 'string' }, pinned: { type: 'boolean' }, colour: { type: 'string' } }, required: ['text'], additionalProperties: false });

// @ts-expect-error required in the type, optional in the schema (text)
schemaOf<Note>()({ type: 'object', properties: { text: { type: 'string' }, pinned: { type: 'boolean' } }, additionalProperties: false });

// @ts-expect-error a field of another type (pinned is a boolean)
schemaOf<Note>()({ type: 'object', properties: { text: { type: 'string' }, pinned: { type: 'string' } }, required: ['text'], additionalProperties: false });

// @ts-expect-error an enum wider than the type's union
schemaOf<{ role: 'user' | 'assistant' }>()({ type: 'object', properties: { role: { enum: ['user', 'assistant', 'tool'] } }, required: ['role'], additionalProperties: false });

// @ts-expect-error a ThreadCreatePayload with a field its schema does not have
schemaOf<ThreadCreatePayload & { colour?: string }>()(requestSchemas['thread.create']);

// Open objects (extra fields allowed) are compared on their declared fields.
schemaOf<Note>()({ type: 'object', properties: { text: { type: 'string' }, pinned: { type: 'boolean' } }, required: ['text'], additionalProperties: true });

// Every frame and event type has a schema, and nothing else does.
true satisfies Same<keyof typeof clientPayloadSchemas, keyof ClientPayloads>;
true satisfies Same<keyof typeof eventPayloadSchemas, keyof EventPayloads>;

const test = suite('typed schemas');

test('schemaOf returns the schema itself: the check is compile-time only', () => {
  const schema = { type: 'object', properties: { text: { type: 'string' }, pinned: { type: 'boolean' } }, required: ['text'], additionalProperties: false } as const;
  assert.ok(schemaOf<Note>()(schema) === schema);
  assert.equal(note.required, ['text']);
});

test.run();
