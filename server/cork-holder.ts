/**
 * Works around a uWebSockets.js bug (seen in v20.30 and still in v20.51, the build we run): `res.cork(() => res.upgrade(...))` after an await can
 * close the freshly upgraded socket (the client sees 1006 right after `session.ready`). After the
 * callback, HttpResponse::cork() re-reads the HTTP response state from memory the upgrade has
 * just handed to the WebSocket; when a stray bit there reads as "Connection: close", it shuts the
 * socket down. The fan-out, storm and golden-path suites fail without this on both builds.
 *
 * Upgrading without any cork avoids the misread but makes uWS print a warning per upgrade. So we
 * keep one HTTP request to ourselves open and never answer it: corking *that* response satisfies
 * uWS (it counts any cork callback), and the post-callback check then reads the holder's own,
 * valid state. The upgrade's writes go straight to the socket, which is what uWS does anyway for
 * an uncorked upgrade.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';

export class CorkHolder {
  private readonly path = `/internal/cork-holder/${randomBytes(16).toString('hex')}`;
  private holder?: HttpResponse;
  private socket?: net.Socket;
  private closed = false;
  private waiting: Array<() => void> = [];

  constructor(app: TemplatedApp, private readonly log: Logger) {
    app.get(this.path, (res) => {
      res.onAborted(() => {
        if (this.holder === res) this.holder = undefined;
        if (!this.closed) this.connect();
      });
      this.holder = res;
      for (const resolve of this.waiting.splice(0)) resolve();
    });
  }

  private port = 0;
  private host = '127.0.0.1';

  /** Opens the held request; resolves once the server holds it. */
  start(port: number, host: string): Promise<void> {
    this.port = port;
    this.host = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    const ready = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.connect();
    return ready;
  }

  private connect(): void {
    if (this.closed) return;
    this.socket?.destroy();
    const socket = net.connect(this.port, this.host, () => {
      socket.write(`GET ${this.path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    });
    socket.on('error', (error) => this.log.warn({ err: error }, 'cork holder connection failed'));
    socket.on('close', () => {
      if (this.socket === socket && !this.closed) setTimeout(() => this.connect(), 100).unref();
    });
    socket.unref();
    this.socket = socket;
  }

  /** Runs `upgrade` (which calls res.upgrade) the safe way. */
  upgrade(res: HttpResponse, upgrade: () => void): void {
    if (this.holder) this.holder.cork(upgrade);
    // Only before start() or while reconnecting: the plain cork, bug and all.
    else res.cork(upgrade);
  }

  close(): void {
    this.closed = true;
    this.holder = undefined;
    this.socket?.destroy();
  }
}
