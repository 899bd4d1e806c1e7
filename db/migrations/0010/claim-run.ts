/**
 * `claim_run(...)` as migration 0009 made it (../0009/claim-run.ts; what it does and why:
 * ../0004/runs.ts), with the job that claims: `p_job` is stored in runs.claimed_by with the new
 * attempt, and a takeover with `p_from_job` replaces only an attempt that job claimed (a
 * re-delivery of a job whose worker died never takes the run from a newer attempt that replaced it
 * meanwhile). Written as these three edits of 0009's frozen text, and so frozen with migration 0010.
 */
import { CLAIM_RUN_FUNCTION as CLAIM_RUN_0009 } from '../0009/claim-run.js';
import { edited } from '../edited.js';

export const CLAIM_RUN_FUNCTION = edited('0010', CLAIM_RUN_0009, [
  [
    'create or replace function claim_run(p_run text, p_takeover boolean, p_from_attempt int, p_stale_ms double precision, p_message text, p_start boolean)',
    'create function claim_run(p_run text, p_takeover boolean, p_from_attempt int, p_stale_ms double precision, p_message text, p_start boolean, p_job text, p_from_job text)',
  ],
  [
    '    and (p_from_attempt is null or v_run.attempt = p_from_attempt)\n',
    '    and (p_from_attempt is null or v_run.attempt = p_from_attempt)\n    and (p_from_job is null or v_run.claimed_by = p_from_job)\n',
  ],
  ['      heartbeat_at = clock_timestamp(),\n', '      heartbeat_at = clock_timestamp(),\n      claimed_by = p_job,\n'],
]);
