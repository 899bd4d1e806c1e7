/** Path parameters and query fields shared by several routes. */
import { idSchema } from '../../protocol/resources.js';

/** `{id}` in a path: an Id. */
export const idPath = { type: 'object', properties: { id: idSchema }, required: ['id'], additionalProperties: false } as const;
