/**
 * A throwaway Redis Cluster: 3 masters and 3 replicas (one per master), each a private
 * `redis-server --cluster-enabled yes` child process on free loopback ports (the client port and
 * the cluster bus port both picked by freePort), joined by `redis-cli --cluster create
 * --cluster-replicas 1`. Ready when every node says cluster_state:ok with all 16384 slots assigned,
 * knows all six nodes, and every replica's link to its master is up.
 *
 * Fault helpers: `killMaster` SIGKILLs the master of a slot (or key) and waits for its replica's
 * promotion (about 4 s with cluster-node-timeout 2000); `restartNode` brings a killed node back
 * (it rejoins as a replica, its nodes.conf kept); `migrateSlot` moves a slot and its keys to
 * another master the way `redis-cli --cluster reshard` does (SETSLOT IMPORTING / MIGRATING,
 * MIGRATE, SETSLOT NODE on every master).
 *
 * Everything lives in one temp dir (`convo-throwaway-redis-cluster-*`, an `owner` file with this
 * process's pid, a `redis-<port>.pid` per node), cleaned up like every throwaway (./throwaway.ts):
 * close(), the exit hook, or the reaper of the next run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { redisConnections, type RedisConnections } from '../../redis/connections.js';
import { freePort } from './ports.js';
import { exited, makeDir, pingRedis, reapStale, registerAtExit, runCommand, tail } from './throwaway.js';
import { waitFor } from './wait.js';

export const CLUSTER_SLOTS = 16_384;
const MASTERS = 3;

export interface ClusterNode {
  /** The node's id (CLUSTER MYID). */
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** For a replica, its master's id. */
  masterId?: string;
  /** Slot ranges served (masters), inclusive. */
  slots: Array<[number, number]>;
  /** Flagged fail / fail? by the node asked. */
  failed: boolean;
}

export interface ThrowawayRedisCluster {
  /** `127.0.0.1:<port>` of all six nodes, as REDIS_CLUSTER_NODES takes them (comma-joined: `nodesSetting`). */
  nodes: string[];
  /** `127.0.0.1:p1,127.0.0.1:p2,…` */
  nodesSetting: string;
  /** The client ports of all six nodes. */
  ports: number[];
  dir: string;
  /** Whether the node on `port` is running. */
  running(port: number): boolean;
  /** The cluster as a live node sees it (CLUSTER NODES). */
  topology(): Promise<ClusterNode[]>;
  /** The slot of a key (CLUSTER KEYSLOT), hash tags included. */
  slotOf(key: string): Promise<number>;
  /** The master serving `slotOrKey` now. */
  masterOf(slotOrKey: number | string): Promise<ClusterNode>;
  /**
   * SIGKILLs the master serving `slotOrKey`, then waits until its replica has been promoted and
   * every live node agrees on the new owner with cluster_state:ok. Returns both ports.
   */
  killMaster(slotOrKey: number | string, timeoutMs?: number): Promise<{ killed: number; promoted: number }>;
  /** Starts a stopped node again on its ports (it rejoins from its nodes.conf) and waits until the cluster is whole. */
  restartNode(port: number, timeoutMs?: number): Promise<void>;
  /**
   * Moves `slot` with its keys to the master on `toPort` (another master when not given).
   * `during` runs while the slot is IMPORTING/MIGRATING, before its keys move. Resolves when every
   * live node routes the slot to its new owner. Returns the new owner's port.
   */
  migrateSlot(slot: number, toPort?: number, options?: { during?: () => Promise<void> }): Promise<number>;
  /** Stops every node and deletes the dir. Safe to call twice. */
  close(): Promise<void>;
  /** A node's log (the last `chars` of every node's when no port is given), for failure messages. */
  log(port?: number, chars?: number): string;
}

interface NodeProcess {
  port: number;
  busPort: number;
  child?: ChildProcess;
}

const alive = (node: NodeProcess) => node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;

/** One command on the node at `port`, on a short-lived connection that never retries. */
export async function onNode<T = unknown>(port: number, ...args: Array<string | number>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 5_000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.call(String(args[0]), ...args.slice(1).map(String))) as T;
  } finally {
    redis.disconnect();
  }
}

/** Parses CLUSTER NODES. */
export function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slotFields] = line.trim().split(' ');
      const flagList = flags!.split(',');
      const port = Number(address!.split('@')[0]!.split(':').at(-1));
      const slots: Array<[number, number]> = [];
      for (const field of slotFields) {
        if (field.startsWith('[')) continue; // a slot being imported/migrated, as seen by this node
        const [a, b] = field.split('-').map(Number);
        slots.push([a!, b ?? a!]);
      }
      return {
        id: id!,
        port,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: masterId === '-' ? undefined : masterId,
        slots,
        failed: flagList.includes('fail') || flagList.includes('fail?'),
      } satisfies ClusterNode;
    });
}

const serves = (node: ClusterNode, slot: number) => node.role === 'master' && node.slots.some(([a, b]) => slot >= a && slot <= b);

export async function startThrowawayRedisCluster(): Promise<ThrowawayRedisCluster> {
  reapStale();
  const dir = makeDir('redis-cluster');
  const processes: NodeProcess[] = [];
  const logFile = (port: number) => path.join(dir, `redis-${port}.log`);
  const killAllSync = () => {
    for (const node of processes) if (alive(node) && node.child!.pid) process.kill(node.child!.pid, 'SIGKILL');
  };
  const unregister = registerAtExit(() => {
    killAllSync();
    rmSync(dir, { recursive: true, force: true });
  });

  const spawnNode = async (node: NodeProcess) => {
    const fd = openSync(logFile(node.port), 'a');
    try {
      node.child = spawn(
        'redis-server',
        [
          '--port', String(node.port),
          '--cluster-port', String(node.busPort),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${node.port}.conf`,
          '--cluster-node-timeout', '2000',
          '--repl-diskless-sync', 'yes',
          '--repl-diskless-sync-delay', '0',
          '--save', '',
          '--appendonly', 'no',
          '--dir', dir,
          '--pidfile', path.join(dir, `redis-${node.port}.pid`),
          '--daemonize', 'no',
          '--loglevel', 'notice',
        ],
        { cwd: dir, stdio: ['ignore', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    const proc = node.child;
    proc.on('error', () => {});
    proc.unref();
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    await waitFor(
      async () => {
        if (!alive(node) || node.child !== proc) throw new Error(`redis-server on port ${node.port} exited at start:\n${tail(logFile(node.port))}`);
        return pingRedis(node.port);
      },
      10_000,
      () => `redis-server on port ${node.port} to answer PING:\n${tail(logFile(node.port))}`,
      20,
    );
  };

  const startNode = async () => {
    // A port (or its bus port) can be taken between the probe and the bind: try a few.
    for (let attempt = 0; ; attempt++) {
      const node: NodeProcess = { port: await freePort(), busPort: await freePort() };
      if (node.busPort === node.port || processes.some((p) => [p.port, p.busPort].includes(node.port) || [p.port, p.busPort].includes(node.busPort))) continue;
      try {
        await spawnNode(node);
        processes.push(node);
        return;
      } catch (error) {
        if (alive(node)) node.child!.kill('SIGKILL');
        if (attempt >= 2) throw error;
      }
    }
  };

  const livePorts = () => processes.filter(alive).map((node) => node.port);
  const topology = async () => {
    let lastError: unknown;
    for (const port of livePorts()) {
      try {
        return parseClusterNodes(await onNode<string>(port, 'CLUSTER', 'NODES'));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no live node answers CLUSTER NODES: ${String(lastError)}`);
  };
  const slotOf = async (key: string) => {
    for (const port of livePorts()) {
      try {
        return await onNode<number>(port, 'CLUSTER', 'KEYSLOT', key);
      } catch {
        // try the next one
      }
    }
    throw new Error('no live node answers CLUSTER KEYSLOT');
  };
  const toSlot = async (slotOrKey: number | string) => (typeof slotOrKey === 'number' ? slotOrKey : slotOf(slotOrKey));
  const masterOf = async (slotOrKey: number | string) => {
    const slot = await toSlot(slotOrKey);
    const owner = (await topology()).find((node) => serves(node, slot) && !node.failed);
    if (!owner) throw new Error(`no live master serves slot ${slot}`);
    return owner;
  };

  /** Every live node: cluster_state ok, all slots assigned, `known` nodes, every live replica's link up. */
  const whole = async (known: number): Promise<string | undefined> => {
    for (const port of livePorts()) {
      const info = await onNode<string>(port, 'CLUSTER', 'INFO').catch((error: Error) => error.message);
      if (!info.includes('cluster_state:ok')) return `node ${port}: ${info.split('\r\n').find((l) => l.startsWith('cluster_state')) ?? info}`;
      if (!info.includes(`cluster_slots_assigned:${CLUSTER_SLOTS}`)) return `node ${port}: not every slot assigned`;
      if (!info.includes(`cluster_known_nodes:${known}`)) return `node ${port}: does not know ${known} nodes yet`;
      const view = parseClusterNodes(await onNode<string>(port, 'CLUSTER', 'NODES').catch(() => ''));
      const masters = view.filter((node) => node.role === 'master' && node.slots.length > 0);
      if (view.some((node) => node.failed)) return `node ${port}: sees a failed node`;
      if (masters.length !== MASTERS) return `node ${port}: sees ${masters.length} masters with slots`;
      if (!masters.every((master) => view.some((node) => node.masterId === master.id))) return `node ${port}: not every master has a replica yet`;
      const replication = await onNode<string>(port, 'INFO', 'replication').catch((error: Error) => error.message);
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return `replica ${port}: link to its master not up`;
    }
    return undefined;
  };
  const waitWhole = async (timeoutMs: number, what: string) => {
    let last: string | undefined = 'not asked yet';
    await waitFor(async () => (last = await whole(processes.length)) === undefined, timeoutMs, () => `${what} (${last})`, 50);
  };

  try {
    for (let i = 0; i < MASTERS * 2; i++) await startNode();
    await runCommand(
      'redis-cli',
      ['--cluster', 'create', ...processes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      dir,
      60_000,
    );
    await waitWhole(30_000, 'the cluster to form');
  } catch (error) {
    killAllSync();
    unregister();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${processes.map((node) => `--- ${node.port}\n${tail(logFile(node.port), 1_500)}`).join('\n')}`);
  }

  const nodes = processes.map((node) => `127.0.0.1:${node.port}`);
  const byPort = (port: number) => {
    const node = processes.find((p) => p.port === port);
    if (!node) throw new Error(`no node of this cluster listens on ${port}`);
    return node;
  };

  let closing: Promise<void> | undefined;
  return {
    nodes,
    nodesSetting: nodes.join(','),
    ports: processes.map((node) => node.port),
    dir,
    running: (port) => alive(byPort(port)),
    topology,
    slotOf,
    masterOf,
    async killMaster(slotOrKey, timeoutMs = 30_000) {
      const slot = await toSlot(slotOrKey);
      const master = await masterOf(slot);
      const victim = byPort(master.port);
      victim.child!.kill('SIGKILL');
      await exited(victim.child!, 10_000);
      let promoted = 0;
      let last = '';
      await waitFor(
        async () => {
          const views = await Promise.all(livePorts().map((port) => onNode<string>(port, 'CLUSTER', 'NODES').then(parseClusterNodes).catch(() => undefined)));
          const owners = new Set(views.map((view) => view?.find((node) => serves(node, slot) && !node.failed)?.port));
          if (owners.size !== 1 || owners.has(undefined) || owners.has(master.port)) {
            last = `owners of slot ${slot} as the live nodes see them: ${[...owners].join(', ')}`;
            return false;
          }
          promoted = [...owners][0]!;
          for (const port of livePorts()) {
            const info = await onNode<string>(port, 'CLUSTER', 'INFO').catch(() => '');
            if (!info.includes('cluster_state:ok')) {
              last = `node ${port} not ok yet`;
              return false;
            }
          }
          return true;
        },
        timeoutMs,
        () => `the replica of ${master.port} to take over slot ${slot} (${last})`,
        50,
      );
      return { killed: master.port, promoted };
    },
    async restartNode(port, timeoutMs = 30_000) {
      const node = byPort(port);
      if (alive(node)) throw new Error(`the node on ${port} is running`);
      await spawnNode(node);
      await waitWhole(timeoutMs, `node ${port} to rejoin`);
    },
    async migrateSlot(slot, toPort, options = {}) {
      const view = await topology();
      const source = view.find((node) => serves(node, slot) && !node.failed);
      if (!source) throw new Error(`no live master serves slot ${slot}`);
      const target = toPort === undefined
        ? view.find((node) => node.role === 'master' && !node.failed && node.id !== source.id)
        : view.find((node) => node.port === toPort);
      if (!target || target.role !== 'master' || target.failed) throw new Error(`no live master on ${toPort ?? 'another port'} to move slot ${slot} to`);
      if (target.id === source.id) return target.port;
      await onNode(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
      await onNode(source.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
      await options.during?.();
      for (;;) {
        const keys = await onNode<string[]>(source.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 100);
        if (keys.length === 0) break;
        await onNode(source.port, 'MIGRATE', '127.0.0.1', target.port, '', 0, 5_000, 'REPLACE', 'KEYS', ...keys);
      }
      await onNode(target.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      await onNode(source.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      for (const node of view) {
        if (node.role === 'master' && !node.failed && node.id !== source.id && node.id !== target.id) {
          await onNode(node.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id).catch(() => {});
        }
      }
      await waitFor(
        async () => {
          const views = await Promise.all(livePorts().map((port) => onNode<string>(port, 'CLUSTER', 'NODES').then(parseClusterNodes).catch(() => undefined)));
          return views.every((seen) => seen?.find((node) => serves(node, slot))?.id === target.id);
        },
        15_000,
        `every node to route slot ${slot} to ${target.port}`,
        50,
      );
      return target.port;
    },
    close() {
      closing ??= (async () => {
        try {
          for (const node of processes) {
            if (alive(node)) {
              node.child!.kill('SIGKILL');
              await exited(node.child!, 10_000).catch(() => {});
            }
          }
        } finally {
          unregister();
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
    log(port, chars = 10_000) {
      if (port !== undefined) return tail(logFile(port), chars);
      return processes.map((node) => `--- ${node.port}\n${tail(logFile(node.port), chars)}`).join('\n');
    },
  };
}

/** The server's Redis connections on `cluster`, with key prefix `prefix` (REDIS_CLUSTER_NODES as it would be set). */
export function clusterConnections(cluster: ThrowawayRedisCluster, prefix: string): RedisConnections {
  return redisConnections({ clusterNodes: cluster.nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })), prefix });
}
