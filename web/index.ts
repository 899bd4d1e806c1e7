/**
 * `convo-gateway/widget`: defines `<convo-chat>` (when the page has custom elements; importing it
 * during server-side rendering does nothing) and exports its class.
 */
import { ConvoChat } from './convo-chat.js';

export { ConvoChat };
export type { TokenCallback } from './token-source.js';

/** Registers the element under `name` (once; a second call with the same name does nothing). */
export function defineConvoChat(name = 'convo-chat'): void {
  if (typeof customElements !== 'undefined' && !customElements.get(name)) customElements.define(name, ConvoChat);
}

defineConvoChat();

declare global {
  interface HTMLElementTagNameMap {
    'convo-chat': ConvoChat;
  }
}
