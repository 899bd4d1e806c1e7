/**
 * The composer: the message box with its Send and Stop buttons. Enter sends (Shift+Enter is a new
 * line; not while an IME composes a character). Nothing typed is lost: the text of a send that
 * failed goes back into an empty box, and sent again unchanged it keeps its client_message_id, so
 * that if the first one was stored after all (a timeout, its answer lost) the server answers with
 * that message instead of storing a second one.
 */
import { newClientMessageId, type ConversationClient } from '../protocol/client/index.js';
import type { MessageSendResult } from '../protocol/frames.js';
import type { Shell } from './chat-shell.js';

export interface ComposerHost {
  readonly client: ConversationClient | undefined;
  /** The thread shown (undefined: a new conversation). */
  readonly threadId: string | undefined;
  readonly agent: string | null;
  /** The server stored the message sent from `threadId`. */
  sent(ack: MessageSendResult, threadId: string | undefined): void;
  fail(error: unknown): void;
}

export class Composer {
  /** The last send that failed: sent again unchanged, it keeps its client_message_id (stored once). */
  private failedSend?: { content: string; threadId?: string; clientMessageId: string };

  constructor(private readonly ui: Shell, private readonly host: ComposerHost) {
    ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    ui.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    ui.stop.addEventListener('click', () => this.stopRun());
  }

  /** A new client: a failed send of the old one is not resent as the same message. */
  reset(): void {
    this.failedSend = undefined;
  }

  /** Stop shows while the thread shown has a run queued or running. */
  paint(activeRunId: string | undefined): void {
    this.ui.stop.hidden = !activeRunId;
  }

  private submit(): void {
    const input = this.ui.input;
    const content = input.value.trim();
    const chat = this.host.client;
    if (!content || !chat) return;
    input.value = '';
    const threadId = this.host.threadId;
    const failed = this.failedSend;
    const clientMessageId = failed && failed.content === content && failed.threadId === threadId ? failed.clientMessageId : newClientMessageId();
    this.failedSend = undefined;
    chat.send(content, { threadId, agentId: this.host.agent ?? undefined, clientMessageId }).then(
      (ack) => this.host.sent(ack, threadId),
      (error: unknown) => {
        if (!input.value) input.value = content;
        if (this.host.client === chat) this.failedSend = { content, threadId, clientMessageId };
        this.host.fail(error);
      },
    );
  }

  private stopRun(): void {
    const chat = this.host.client;
    const threadId = this.host.threadId;
    const runId = threadId ? chat?.thread(threadId)?.activeRunId : undefined;
    if (runId) chat!.cancel(runId).catch((error: unknown) => this.host.fail(error));
  }
}
