/**
 * Schemas checked against their TypeScript types at compile time. `schemaOf<T>()(schema)` returns
 * the schema unchanged, and tsc refuses it unless the type the schema describes (json-schema-to-ts'
 * `FromSchema`) is exactly `T`: a field in the type but not the schema, or the reverse, a
 * different type, or a field required in one and optional in the other is a compile error. Open
 * objects (`additionalProperties: true`) are compared on their declared fields.
 *
 * Types only at run time: nothing here reaches a bundle but the identity function.
 */
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';

/** True when A and B are the same type (not merely assignable either way). */
export type Same<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false;

/** `T` without index signatures, all the way down (an open object's declared fields). */
export type Declared<T> = T extends readonly (infer E)[]
  ? Declared<E>[]
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: Declared<T[K]> }
    : T;

/** The type a schema describes, open objects reduced to their declared fields. */
export type Described<S extends JSONSchema> = Declared<FromSchema<S>>;

/** What tsc reports on a mismatch: both sides, to compare. */
export interface SchemaMismatch<Schema, Type> {
  '~schema describes': Schema;
  '~but the type is': Type;
}

/** `unknown` when S describes exactly `Declared<T>`, else the mismatch (which no schema satisfies). */
export type Checked<S, T> = S extends JSONSchema
  ? Same<Described<S>, Declared<T>> extends true ? unknown : SchemaMismatch<Described<S>, Declared<T>>
  : SchemaMismatch<S, T>;

/** `schemaOf<T>()(schema)`: `schema`, which must describe exactly `Declared<T>`. */
export function schemaOf<T>() {
  return <const S>(schema: S & Checked<S, T>): S => schema;
}
