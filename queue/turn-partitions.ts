/**
 * Which BullMQ queue a thread's turns go on. A queue lives on one Redis Cluster slot (BullMQ keeps
 * all of a queue's keys under one hash tag), so turns spread over shards only across several queues:
 * TURN_QUEUE_PARTITIONS of them. A thread always maps to the same one (a stable hash of its id), so
 * its jobs (first delivery, wake-ups, the sweeper's re-enqueue and takeovers) meet in one queue,
 * and a run is still claimed in Postgres before anything happens (one turn per thread holds
 * whatever the queue).
 *
 * On one Redis node with one partition the queue keeps its name of always, `turns`, so a deployment
 * that upgrades keeps its queued jobs. Otherwise the names carry a hash tag chosen so that the
 * partitions' slots are evenly spaced over 0-16383: a cluster gives its masters contiguous slot
 * ranges of equal size, so 6 partitions put 2 queues on each of 3 masters (plain `{turns-0}`…
 * `{turns-5}` would land wherever CRC16 puts them: 1, 3 and 2 on three masters of equal ranges).
 */
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';

const SLOTS = 16_384;
const LEGACY_NAME = 'turns';

/** The queue names, partition by partition. */
export function turnQueueNames(partitions: number, cluster: boolean): string[] {
  if (partitions === 1 && !cluster) return [LEGACY_NAME];
  return Array.from({ length: partitions }, (_, index) => `{${spacedTag(index, partitions)}}`);
}

/**
 * `turns-<index>` followed by the first suffix whose slot falls in the index-th of `partitions`
 * equal slot ranges (deterministic: every process computes the same names).
 */
function spacedTag(index: number, partitions: number): string {
  const low = Math.floor((index * SLOTS) / partitions);
  const high = Math.floor(((index + 1) * SLOTS) / partitions);
  for (let suffix = 0; suffix < 1_000_000; suffix++) {
    const tag = `turns-${index}-${suffix}`;
    const slot = calculateSlot(tag);
    if (slot >= low && slot < high) return tag;
  }
  return `turns-${index}`; // more partitions than a million tries can place (never with <= 1024)
}

/** The partition of a thread: a stable hash of its id (the same in every process and release). */
export function partitionOf(threadId: string, partitions: number): number {
  if (partitions === 1) return 0;
  return createHash('sha1').update(threadId).digest().readUInt32BE(0) % partitions;
}
