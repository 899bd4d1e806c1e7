/**
 * Assistant text as Markdown, made safe. Model output is untrusted: raw HTML in it is shown as
 * text (never parsed), and the HTML that Markdown produces still goes through DOMPurify, which
 * also drops `javascript:` links. Links open in a new tab without access to this page.
 */
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // Inline and block HTML in the source: escaped, so `<img onerror=...>` reads as text.
    html: ({ text }) => escapeHtml(text),
  },
});

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
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input', 'button', 'iframe'] });
}
