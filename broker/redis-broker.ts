import type { Redis } from 'ioredis';
import { oneChannelPerNode, type RedisConnections } from '../redis/connections.js';
import type { Logger } from 'pino';
import { HandlerTable, type Broker } from './broker.js';

/**
 * How long a burst of sharded-subscriber resets must be quiet before the channels are re-subscribed
 * and listeners re-sync. While a master is dead ioredis resets its subscribers every few ms for
 * the whole 3.5-4 s until the replica is promoted, with gaps of up to 131-142 ms when the machine
 * is busy (measured on the test cluster, two failover suites at once): a shorter wait let a round
 * in such a gap call the listeners, and they re-synced two or three times per failover.
 */
const RESYNC_SETTLE_MS = 250;
/** The first retry of a failed publish, and the longest wait between retries. */
const REPUBLISH_FIRST_MS = 500;
const REPUBLISH_MAX_MS = 5_000;

/**
 * Redis pub/sub. One connection publishes, one subscribes; a channel is subscribed on Redis once
 * while any handler in this process wants it. Channel names are prefixed with `prefix`.
 *
 * On a Redis Cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE), each message only within the shard that
 * owns its channel's slot. Channel names carry no hash tag, so each thread's channel hashes to a
 * slot of its own: ioredis keeps one sharded subscriber connection per master whatever the layout,
 * and fixed partition tags would put 1/N of all threads on one slot (a hot slot, and a slot move
 * re-syncing all of them). Measured and explained in README "Redis Cluster".
 */
export class RedisBroker implements Broker {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly sharded: boolean;
  private readonly table: HandlerTable;
  /** Channels whose SUBSCRIBE has been sent but not yet confirmed. */
  private readonly subscribing = new Map<string, Promise<void>>();
  private readonly reconnectListeners = new Set<() => void>();
  private everReady = false;
  /** The settle timer of a burst of subscriber resets (cluster), and the number of re-sync rounds started. */
  private resyncTimer?: NodeJS.Timeout;
  private resyncRound = 0;
  /** The publishing connection has been ready once (from then on, commands fail fast while it is down). */
  private pubConnected = false;
  private pubFirstReady?: Promise<void>;
  /**
   * The latest message of each channel whose publish failed. Without a later publish, a gateway
   * would never learn of the last events of a turn (it fills gaps only when a newer seq arrives),
   * so they are published again as soon as the connection is back: when it is ready again, and
   * on a timer meanwhile. On a cluster the connection stays ready while one master fails over, so
   * only the timer sends them once the promoted replica serves the channel.
   */
  private readonly unpublished = new Map<string, string>();
  private republishTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  private readonly prefix: string;

  constructor(redis: RedisConnections, log?: Logger) {
    this.prefix = redis.prefix;
    this.sharded = redis.cluster;
    this.table = new HandlerTable((error, channel) => log?.error({ err: error, channel }, 'a broker message handler threw'));
    // Publishing fails fast while Redis is unreachable (the 'publish' role): every event is in the
    // log already, and gateways re-sync from it on reconnect.
    this.pub = redis.connect('publish');
    this.sub = redis.connect('subscribe');
    this.pub.on('ready', () => {
      this.pubConnected = true;
      if (this.unpublished.size > 0) void this.republish();
    });
    this.sub.on(this.sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, message: Buffer) => {
      this.table.deliver(channel.toString().slice(this.prefix.length), message.toString());
    });
    if (this.sharded) {
      this.sub.on('subscribersReady', () => this.resubscribed());
      return;
    }
    // ioredis re-subscribes by itself after a reconnect; what was published meanwhile is lost, and
    // listeners recover it from the log. 'ready' fires just before the SUBSCRIBE commands go out,
    // so listeners wait for a PING queued behind them: once it answers, the channels are live again
    // and a read of the log cannot miss an event that was published in between.
    this.sub.on('ready', () => {
      if (!this.everReady) {
        this.everReady = true;
        return;
      }
      setImmediate(() => {
        this.sub.ping().then(
          () => { for (const listener of this.reconnectListeners) listener(); },
          () => {}, // cut off again: the next 'ready' calls the listeners
        );
      });
    });
  }

  /**
   * On a cluster: ioredis's sharded subscribers were made again after the slot map changed (a slot
   * moved, a master failed over, the cluster came back) and it has sent SSUBSCRIBE for every channel
   * again, without waiting for the answers; whatever was published on a moved or failed shard
   * meanwhile is lost. One channel per node is subscribed once more (answered after the SSUBSCRIBEs
   * sent before it there; ioredis would keep a duplicate of every channel re-sent), and once all
   * are answered the channels are live and listeners re-sync from the log. (The first
   * 'subscribersReady' is the cluster's first connect; a second may follow when the first slot map
   * arrives, which costs a re-sync of nothing or little.)
   *
   * A failover makes ioredis reset its subscribers hundreds of times within a few milliseconds
   * (each SSUBSCRIBE that meets the old owner refreshes the slot map, which resets the group): the
   * resets of one episode are taken as one, RESYNC_SETTLE_MS after the last, and only the last
   * round of subscribes calls the listeners. Each call costs every gateway a read of the log per
   * followed thread, and every worker a sweep.
   */
  private resubscribed(): void {
    if (!this.everReady) {
      this.everReady = true;
      return;
    }
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.resync(), RESYNC_SETTLE_MS);
  }

  private resync(): void {
    this.resyncTimer = undefined;
    const round = ++this.resyncRound;
    const channels = this.table.channels().map((channel) => this.prefix + channel);
    if (channels.length === 0 || this.closing) return; // nothing subscribed: nothing to re-sync
    Promise.all(oneChannelPerNode(this.sub, channels).map((channel) => this.sub.ssubscribe(channel))).then(
      () => {
        if (round !== this.resyncRound) return; // a later round is on its way: it calls them
        for (const listener of this.reconnectListeners) listener();
      },
      () => {}, // the slot map changed again: the next 'subscribersReady' calls the listeners
    );
  }

  /** Channels whose latest message is still to be published again (a failed publish): for tests and diagnostics. */
  get unpublishedCount(): number {
    return this.unpublished.size;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.firstConnect();
    try {
      await this.send(channel, message);
      this.unpublished.delete(channel);
    } catch (error) {
      this.unpublished.set(channel, message);
      this.republishLater();
      throw error;
    }
  }

  /** Tries the unpublished messages again after `delayMs`, and again (backing off to 5 s) until all are sent. */
  private republishLater(delayMs = REPUBLISH_FIRST_MS): void {
    if (this.republishTimer || this.closing) return;
    this.republishTimer = setTimeout(() => {
      void this.republish().finally(() => {
        this.republishTimer = undefined;
        if (this.unpublished.size > 0) this.republishLater(Math.min(delayMs * 2, REPUBLISH_MAX_MS));
      });
    }, delayMs);
    this.republishTimer.unref();
  }

  private send(channel: string, message: string): Promise<unknown> {
    return this.sharded ? this.pub.spublish(this.prefix + channel, message) : this.pub.publish(this.prefix + channel, message);
  }

  private async republish(): Promise<void> {
    for (const [channel, message] of [...this.unpublished]) {
      if (this.unpublished.get(channel) !== message) continue; // a newer publish came meanwhile
      try {
        await this.send(channel, message);
        if (this.unpublished.get(channel) === message) this.unpublished.delete(channel);
      } catch {
        return; // cut off again: the timer or the next 'ready' tries again
      }
    }
  }

  /**
   * Commands fail fast while the publishing connection is down, but not before it first connected:
   * a broker used right after it was made waits for its connection (up to 5 s).
   */
  private firstConnect(): Promise<void> | void {
    if (this.pub.status === 'ready' || this.pubConnected) return;
    this.pubFirstReady ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      this.pub.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.pubFirstReady;
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    if (this.table.add(channel, handler)) {
      this.subscribing.set(channel, (this.sharded ? this.sub.ssubscribe(this.prefix + channel) : this.sub.subscribe(this.prefix + channel)).then(() => undefined));
    }
    // A handler joining a channel whose SUBSCRIBE is still in flight waits for it too: the
    // subscription is not active before Redis confirms it.
    const pending = this.subscribing.get(channel);
    if (pending) {
      try {
        await pending;
      } catch (error) {
        this.table.remove(channel, handler);
        throw error;
      } finally {
        if (this.subscribing.get(channel) === pending) this.subscribing.delete(channel);
      }
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (this.table.remove(channel, handler) && this.sub.status === 'ready') {
        await (this.sharded ? this.sub.sunsubscribe(this.prefix + channel) : this.sub.unsubscribe(this.prefix + channel)).catch(() => {});
      }
    };
  }

  async ping(): Promise<void> {
    await this.firstConnect();
    await this.pub.ping();
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Redis channels this process is subscribed to (for metrics and the leak tests). */
  get channelCount(): number {
    return this.table.channelCount;
  }

  close(): Promise<void> {
    clearTimeout(this.resyncTimer);
    clearTimeout(this.republishTimer);
    this.closing ??= Promise.allSettled([this.pub.quit(), this.sub.quit()]).then(() => {
      this.pub.disconnect();
      this.sub.disconnect();
    });
    return this.closing;
  }
}
