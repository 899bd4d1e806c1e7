/**
 * Full-text search over a user's own user and assistant messages, best match first, with the
 * thread and a snippet. `q` uses web-search syntax: words, "quoted phrases", -not, or.
 *
 * Bounded in cost: matches are ranked on the stored tsvector (no re-parsing), snippets
 * (ts_headline, which re-parses the text) are made only for the page returned and only from the
 * first SNIPPET_SOURCE_CHARS of each message, and the whole search runs under its own time budget
 * (db/time-budget.ts).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { ownedBy, type Owner } from './owner.js';
import { withTimeBudget } from './time-budget.js';

/**
 * What ts_headline puts around each match in `snippet`: two control characters, so that the caller
 * can escape the text first and mark the matches after (a message containing them can at worst
 * add a mark).
 */
export const SNIPPET_MARKS = { start: '\u0002', stop: '\u0003' } as const;

export interface SearchRow {
  thread_id: string;
  thread_title: string | null;
  message_id: string;
  role: 'user' | 'assistant';
  /** Raw text around the matches, each match between SNIPPET_MARKS. */
  snippet: string;
  rank: number;
  created_at: Date;
}

/** Snippets are cut from at most this much of a message (ts_headline's cost grows with the text). */
const SNIPPET_SOURCE_CHARS = 4_000;
const HEADLINE_OPTIONS = sql.lit(`StartSel=${SNIPPET_MARKS.start}, StopSel=${SNIPPET_MARKS.stop}, MaxWords=24, MinWords=8`);

/** At most `limit` hits; over `timeoutMs` Postgres cancels the search (SQLSTATE 57014). */
export async function searchOwnMessages(
  db: Kysely<Database>,
  owner: Owner,
  input: { q: string; limit: number },
  timeoutMs: number,
): Promise<SearchRow[]> {
  const query = sql<SearchRow>`
    with q as (select websearch_to_tsquery('simple', ${input.q}) as q),
    page as (
      select m.id, m.thread_id, m.role, m.content, m.created_at, threads.title, ts_rank(m.search_tsv, q.q)::float8 as rank
      from messages m
      join threads on threads.id = m.thread_id, q
      where ${ownedBy(owner, 'threads')}
        and m.role in ('user', 'assistant') and m.search_tsv @@ q.q
      order by rank desc, m.created_at desc
      limit ${input.limit}
    )
    select page.thread_id, page.title as thread_title, page.id as message_id, page.role,
      ts_headline('simple', left(page.content, ${SNIPPET_SOURCE_CHARS}), q.q, ${HEADLINE_OPTIONS}) as snippet,
      page.rank, page.created_at
    from page, q
    order by page.rank desc, page.created_at desc`;
  const result = await withTimeBudget(db, timeoutMs, (trx) => query.execute(trx));
  return result.rows.map((row) => ({ ...row, rank: Number(row.rank) }));
}
