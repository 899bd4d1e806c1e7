/**
 * Path and query parameters, parsed by ajv from their route's schemas. They arrive as text, so
 * this ajv instance coerces (`"20"` → 20, `"true"` → true) and fills in defaults; it is a separate
 * instance from the protocol's, which never coerces a body or a frame.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describeError } from '../../protocol/validate.js';
import { RequestError } from '../errors.js';
import type { ObjectSchema } from './route.js';

// ajv and ajv-formats are CommonJS with a `default` export; under NodeNext the class is on .default.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

/** `verbose`: an error carries its schema, so a message can name a parameter's range. */
const paramAjv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: true, strict: true, allowUnionTypes: true, verbose: true });
addFormats(paramAjv, ['date-time']);

/** A compiled parser of one route's path or query parameters. */
export interface ParamParser {
  /** The parameters as typed values, defaults filled in; throws `invalid_request` naming the first bad one. */
  parse(values: Record<string, string>): Record<string, unknown>;
}

export function paramParser(schema: ObjectSchema, where: 'path' | 'query'): ParamParser {
  const validate: ValidateFunction = paramAjv.compile(schema);
  const names = Object.keys(schema.properties);
  return {
    parse(values) {
      // Only the declared names; an empty value is the same as none (`?limit=` means the default).
      const input: Record<string, unknown> = {};
      for (const name of names) if (values[name] !== undefined && values[name] !== '') input[name] = values[name];
      if (!validate(input)) throw new RequestError('invalid_request', describeParamError(validate.errors?.[0], where));
      return input;
    },
  };
}

/**
 * One sentence naming the parameter and what it must be: `query.limit must be a whole number from
 * 1 to 100`, `query.archived must be true or false`, `query.q must not be blank`.
 */
export function describeParamError(error: ErrorObject | undefined, where: string): string {
  const schema = error?.parentSchema as { type?: string; minimum?: number; maximum?: number; pattern?: string } | undefined;
  const path = where + (error?.instancePath ?? '').replace(/\//g, '.');
  if (error && schema?.type === 'integer' && ['type', 'minimum', 'maximum'].includes(error.keyword)) {
    if (schema.minimum !== undefined && schema.maximum !== undefined) return `${path} must be a whole number from ${schema.minimum} to ${schema.maximum}`;
    if (schema.minimum !== undefined) return `${path} must be a whole number from ${schema.minimum}`;
    return `${path} must be a whole number`;
  }
  if (error && schema?.type === 'boolean' && error.keyword === 'type') return `${path} must be true or false`;
  if (error?.keyword === 'pattern' && schema?.pattern === NOT_BLANK) return `${path} must not be blank`;
  return describeError(error, where);
}

/** A pattern that refuses text of only white space. */
export const NOT_BLANK = '\\S';
