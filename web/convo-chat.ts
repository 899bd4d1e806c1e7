/**
 * `<convo-chat>`: the chat widget. A custom element with its own shadow root, driven by one
 * ConversationClient. Configured by attributes (strings) or the matching properties, so it works
 * in a plain page and in React/Next.js alike; it tells the host what happens with DOM events
 * (`convo-status`, `convo-ready`, `convo-thread-change`, `convo-message`, `convo-error`), which
 * bubble and cross shadow roots. This file is the element itself: its settings and when they take
 * effect; what it does with them is chat-controller.ts.
 */
import type { ConversationClient } from '../protocol/client/index.js';
import { ChatController } from './chat-controller.js';
import type { TokenCallback } from './token-source.js';

// Server-side rendering (Next.js) imports this module where there is no DOM: the class still loads.
const Base = (typeof HTMLElement === 'undefined' ? class {} : HTMLElement) as typeof HTMLElement;

export class ConvoChat extends Base {
  static observedAttributes = ['server', 'token-endpoint', 'token-method', 'agent', 'thread', 'heading'];

  private tokenCallback?: TokenCallback;
  private readonly chat = new ChatController(this);

  // ---- configuration: attributes and properties ------------------------------------------------

  get server(): string { return this.getAttribute('server') ?? location.origin; }
  set server(value: string) { this.setAttribute('server', value); }
  get tokenEndpoint(): string | null { return this.getAttribute('token-endpoint'); }
  set tokenEndpoint(value: string | null) { this.toggleAttr('token-endpoint', value); }
  get agent(): string | null { return this.getAttribute('agent'); }
  set agent(value: string | null) { this.toggleAttr('agent', value); }
  get thread(): string | null { return this.getAttribute('thread'); }
  set thread(value: string | null) { this.toggleAttr('thread', value); }
  /**
   * A function returning a JWT (or a promise of one); takes precedence over token-endpoint. The
   * client asks for each token through the element, so setting a new function (React passes a new
   * inline one on every render) takes effect at the next token request, without a reconnect.
   */
  get token(): TokenCallback | undefined { return this.tokenCallback; }
  set token(value: TokenCallback | undefined) {
    this.tokenCallback = value;
    if (this.isConnected && !this.chat.client) this.chat.restart();
  }
  /** The client behind the element, for hosts that want its state or events. */
  get client(): ConversationClient | undefined { return this.chat.client; }

  connectedCallback(): void {
    // A property set before this element was defined (React does that) sits on the instance.
    for (const name of ['token', 'server', 'tokenEndpoint', 'agent', 'thread'] as const) {
      if (Object.hasOwn(this, name)) {
        const value = (this as Record<string, unknown>)[name];
        delete (this as Record<string, unknown>)[name];
        (this as Record<string, unknown>)[name] = value;
      }
    }
    if (!this.chat.client) this.chat.restart();
  }

  disconnectedCallback(): void {
    this.chat.close();
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value || !this.isConnected) return;
    if (name === 'thread') this.chat.select(value ?? undefined, false);
    else if (name === 'heading') this.chat.schedule();
    else if (name !== 'agent') this.chat.restart();
  }

  private toggleAttr(name: string, value: string | null): void {
    if (value === null || value === undefined) this.removeAttribute(name);
    else this.setAttribute(name, value);
  }
}
