/**
 * The element's shadow root: its styles (styles.ts) and its markup, with the named parts a page
 * styles through `::part()`, and handles on the parts the element drives.
 */
import { styles } from './styles.js';

const TEMPLATE = `
<div class="root" part="root"><div class="layout">
  <nav class="threads" part="thread-list" aria-label="Conversations">
    <button type="button" class="new" part="new-button">New conversation</button>
    <ul></ul>
  </nav>
  <section class="main">
    <header part="header"><span class="title"></span><span class="status" role="status" part="status"></span></header>
    <div class="log" role="log" aria-live="polite" aria-label="Messages" tabindex="0" part="log"></div>
    <div class="alert" role="alert" part="error" hidden></div>
    <form part="composer">
      <textarea aria-label="Message" rows="1" placeholder="Write a message…" part="input"></textarea>
      <button type="button" class="secondary" part="stop-button" hidden>Stop</button>
      <button type="submit" class="primary" part="send-button">Send</button>
    </form>
  </section>
</div></div>`;

export interface Shell {
  list: HTMLUListElement; log: HTMLElement; status: HTMLElement; title: HTMLElement; alert: HTMLElement;
  input: HTMLTextAreaElement; stop: HTMLButtonElement; form: HTMLFormElement; newButton: HTMLButtonElement;
}

/** Attaches the shadow root to `host` and fills it. */
export function buildShell(host: HTMLElement): Shell {
  const root = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = styles;
  root.append(style);
  const template = document.createElement('template');
  template.innerHTML = TEMPLATE;
  root.append(template.content.cloneNode(true));
  const q = <T extends Element>(selector: string) => root.querySelector(selector) as T;
  return {
    list: q('.threads ul'), log: q('.log'), status: q('.status'), title: q('.title'), alert: q('.alert'),
    input: q('textarea'), stop: q('.secondary'), form: q('form'), newButton: q('.new'),
  };
}
