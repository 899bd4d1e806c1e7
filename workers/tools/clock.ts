/**
 * `get_current_time` tool.
 *   {}                              -> ISO 8601 UTC, e.g. "2026-11-23T09:00:01.000Z"
 *   {"timezone": "Europe/Paris"}    -> local time with offset and zone,
 *                                      e.g. "2026-11-23T10:00:01+01:00 (Europe/Paris)"
 * An unknown IANA zone -> ToolError tool_bad_arguments.
 */
import { ToolError, type Tool } from './tool.js';

export interface ClockArgs { timezone?: string }

export function formatInZone(date: Date, timeZone: string): string {
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
  } catch {
    throw new ToolError('tool_bad_arguments', `Unknown time zone "${timeZone}"; use an IANA name such as "Europe/Paris" or "UTC".`);
  }
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(date)) parts[p.type] = p.value;
  // longOffset is "GMT+01:00", or plain "GMT" for a zero offset.
  const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  // Keep the caller's spelling unless ICU only fixed its case (ICU maps e.g. Asia/Kolkata to Asia/Calcutta).
  const resolved = fmt.resolvedOptions().timeZone;
  const zone = resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset} (${zone})`;
}

/** `now` is injectable for tests. */
export function createClockTool(now: () => Date = () => new Date()): Tool<ClockArgs> {
  return {
    name: 'get_current_time',
    description:
      'Get the current date and time. Without arguments returns UTC in ISO 8601; with an IANA "timezone" returns the local time there.',
    parameters: {
      type: 'object',
      properties: {
        timezone: { type: 'string', minLength: 1, description: 'IANA time zone name, e.g. "Europe/Paris". Omit for UTC.' },
      },
      additionalProperties: false,
    },
    async execute({ timezone }) {
      const date = now();
      return timezone === undefined ? date.toISOString() : formatInZone(date, timezone);
    },
  };
}

export const clockTool = createClockTool();
