/**
 * The approval requests of a thread, by run, read from the events its state was folded from: the
 * SDK's run state holds only the request still waiting (`run.pending`), while the log shows every
 * request with its decision (`approval_resolved`: approved, denied, expired, cancelled), from live
 * events and from history alike. Kept per events array and read on from where the last paint
 * stopped, so a paint during a streaming turn costs the new events only.
 */
import type { ApprovalStatus, ThreadEvent } from '../protocol/client/index.js';

export interface Approval {
  threadId: string;
  runId: string;
  toolCallId: string;
  toolName: string;
  arguments: unknown;
  expiresAt: string;
  /** The stored decision, once approval_resolved is in. */
  decision?: { status: ApprovalStatus; reason?: string };
}

interface Index {
  read: number;
  byRun: Map<string, Approval[]>;
}

// A history page replaces the events array (older events go in front): a new array, a new index.
const indexes = new WeakMap<ThreadEvent[], Index>();

export function approvalsByRun(events: ThreadEvent[]): Map<string, Approval[]> {
  let index = indexes.get(events);
  if (!index) indexes.set(events, (index = { read: 0, byRun: new Map() }));
  for (; index.read < events.length; index.read++) {
    const event = events[index.read]!;
    const runId = event.payload.run_id;
    if (!runId) continue;
    if (event.type === 'approval_requested') {
      const p = event.payload;
      const list = index.byRun.get(runId) ?? [];
      index.byRun.set(runId, list);
      list.push({ threadId: p.thread_id, runId, toolCallId: p.tool_call_id, toolName: p.tool_name, arguments: p.arguments, expiresAt: p.expires_at });
    } else if (event.type === 'approval_resolved') {
      const { tool_call_id, status, reason } = event.payload;
      const approval = index.byRun.get(runId)?.find((a) => a.toolCallId === tool_call_id);
      if (approval) approval.decision = { status, ...(reason !== undefined ? { reason } : {}) };
    }
  }
  return index.byRun;
}
