/**
 * The approval id of a call a run waits on, as the AI SDK stream carries it: the run and the call.
 * Not a secret: the answer is checked against the calls that wait on the caller's runs, so an id
 * that names anything else is refused (not_found), never taken as an approval.
 */

export function approvalId(runId: string, toolCallId: string): string {
  return `${runId}:${toolCallId}`;
}

/** The run and call an approval id names, or undefined when it is not one (run ids hold no `:`). */
export function parseApprovalId(id: string): { runId: string; toolCallId: string } | undefined {
  const at = id.indexOf(':');
  if (at <= 0 || at === id.length - 1) return undefined;
  return { runId: id.slice(0, at), toolCallId: id.slice(at + 1) };
}
