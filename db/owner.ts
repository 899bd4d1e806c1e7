/**
 * The owner filter: a user's threads and runs are theirs within one workspace, so every read or
 * change of them on someone's behalf is filtered by both. Written here once; someone else's row
 * and a missing one look the same to the caller.
 */
import { expressionBuilder, type Expression, type SqlBool } from 'kysely';
import type { Database } from './schema.js';

/** Who is asking. */
export interface Owner {
  workspaceId: string;
  userId: string;
}

/** The tables whose rows belong to one user of one workspace. */
export type OwnedTable = 'threads' | 'runs';

/**
 * `workspace_id = … and user_id = …` for `where(...)` in a query builder or `${...}` in a `sql`
 * template. Name the table when the query reads more than one (the columns are qualified then).
 */
export function ownedBy(owner: Owner, table?: OwnedTable): Expression<SqlBool> {
  const eb = expressionBuilder<Database, OwnedTable>();
  const column = <C extends 'workspace_id' | 'user_id'>(name: C) => (table ? (`${table}.${name}` as const) : name);
  return eb.and([eb(column('workspace_id'), '=', owner.workspaceId), eb(column('user_id'), '=', owner.userId)]);
}

/** The same rule for a row already read (a batched read of many owners' rows filters after the fact). */
export function isOwnedBy(row: { workspace_id: string; user_id: string }, owner: Owner): boolean {
  return row.workspace_id === owner.workspaceId && row.user_id === owner.userId;
}
