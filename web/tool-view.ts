/**
 * One tool call of a run, as a disclosure: its name and state in the summary, its arguments (shown
 * once) and its result or error inside. Only a change of state touches the element, so a paint does
 * not pay for the size of every tool's arguments.
 */
import type { ToolActivity } from '../protocol/client/index.js';
import { pretty } from './arguments-view.js';
import { el } from './dom.js';

export class ToolView {
  readonly element: HTMLDetailsElement;
  private readonly summary: HTMLElement;
  private shownStatus?: ToolActivity['status'];
  private argumentsShown = false;

  constructor(tool: ToolActivity) {
    this.element = el('details', 'tool');
    this.element.dataset.id = tool.toolCallId;
    this.element.setAttribute('part', 'tool');
    this.summary = el('summary');
    this.element.append(this.summary);
  }

  /** Arguments are shown once; the label and the result when the status changes. */
  update(tool: ToolActivity): void {
    if (!this.argumentsShown && tool.arguments !== undefined) {
      this.argumentsShown = true;
      this.summary.after(el('div', 'note', 'Arguments'), el('pre', '', pretty(tool.arguments)));
    }
    if (tool.status === this.shownStatus) return;
    this.shownStatus = tool.status;
    this.element.dataset.status = tool.status;
    const label = { running: '', completed: ' — done', error: ' — failed', abandoned: ' — not finished' }[tool.status];
    this.summary.textContent = `Tool: ${tool.name}${label}`;
    if (tool.result !== undefined) {
      const heading = tool.status === 'error' ? 'Error' : `Result${tool.durationMs !== undefined ? ` (${tool.durationMs} ms)` : ''}`;
      this.element.append(el('div', 'note', heading), el('pre', '', tool.result));
    }
  }
}
