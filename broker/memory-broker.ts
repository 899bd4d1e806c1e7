import type { Logger } from 'pino';
import { HandlerTable, type Broker } from './broker.js';

/** In-process pub/sub for a single node (embedded mode and tests of the gateway alone). */
export class MemoryBroker implements Broker {
  private readonly table: HandlerTable;

  constructor(log?: Logger) {
    this.table = new HandlerTable((error, channel) => log?.error({ err: error, channel }, 'a broker message handler threw'));
  }

  async publish(channel: string, message: string): Promise<void> {
    this.table.deliver(channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    this.table.add(channel, handler);
    let done = false;
    return async () => {
      // Idempotent: a repeated call must not remove a later subscription of the same handler.
      if (done) return;
      done = true;
      this.table.remove(channel, handler);
    };
  }

  async ping(): Promise<void> {}

  get channelCount(): number {
    return this.table.channelCount;
  }

  /** In-process: never disconnected. */
  onReconnect(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}
