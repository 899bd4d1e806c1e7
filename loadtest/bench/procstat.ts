/**
 * CPU and memory of processes, read from /proc: utime + stime of a process (all its threads) and,
 * for a parent that reaps its children (the postmaster), cutime + cstime of the children that
 * ended. A process tree's CPU over a window is the difference of two samples.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second (USER_HZ); 100 on every Linux this runs on. */
const HZ = 100;

export interface ProcSample {
  pid: number;
  /** CPU seconds used by the process itself. */
  cpu: number;
  /** CPU seconds of its children that ended and were waited for. */
  childCpu: number;
  rssBytes: number;
  peakRssBytes: number;
  /** Private (anonymous) resident memory: what a Postgres backend adds beyond the shared buffers. */
  anonBytes: number;
}

function stat(pid: number): { ppid: number; cpu: number; childCpu: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(fields[i - 3]);
  return { ppid: n(4), cpu: (n(14) + n(15)) / HZ, childCpu: (n(16) + n(17)) / HZ };
}

function memory(pid: number): { rss: number; peak: number; anon: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM'), anon: kb('RssAnon') };
  } catch {
    return { rss: 0, peak: 0, anon: 0 };
  }
}

export function sample(pid: number): ProcSample | undefined {
  const s = stat(pid);
  if (!s) return undefined;
  const m = memory(pid);
  return { pid, cpu: s.cpu, childCpu: s.childCpu, rssBytes: m.rss, peakRssBytes: m.peak, anonBytes: m.anon };
}

/** The pid and all its descendants alive now. */
export function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  if (stat(root)) walk(root);
  return out;
}

/** A group of processes counted as one (a server role, "postgres" with its backends). */
export interface GroupSample {
  at: number;
  byPid: Map<number, ProcSample>;
}

export function sampleGroup(pids: number[]): GroupSample {
  const byPid = new Map<number, ProcSample>();
  for (const pid of pids) {
    const s = sample(pid);
    if (s) byPid.set(pid, s);
  }
  return { at: performance.now(), byPid };
}

/**
 * CPU seconds the group used between two samples: every process's own CPU difference (a process
 * born in between counts from zero), plus what the root reaped from ended children.
 */
export function cpuBetween(before: GroupSample, after: GroupSample, root?: number): number {
  let total = 0;
  for (const [pid, end] of after.byPid) {
    const start = before.byPid.get(pid);
    total += end.cpu - (start?.cpu ?? 0);
  }
  if (root !== undefined) {
    const end = after.byPid.get(root);
    const start = before.byPid.get(root);
    if (end && start) total += end.childCpu - start.childCpu;
  }
  return total;
}

/** Resident memory of a group: `rss` sums VmRSS (right for one process); `anon` sums private memory (right for Postgres, whose backends share their buffers). */
export function rssOf(group: GroupSample, kind: 'rss' | 'anon' = 'rss'): number {
  let total = 0;
  for (const s of group.byPid.values()) total += kind === 'rss' ? s.rssBytes : s.anonBytes;
  return total;
}
