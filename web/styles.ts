/**
 * The element's styles, inside its shadow root. The page's selectors do not reach in, and
 * `all: initial` on the host stops what would still be inherited from the page (its
 * text-transform, letter-spacing, font-style, white-space…); theming goes through the custom
 * properties below, which do cross the shadow boundary (`all` leaves them alone), and through
 * `::part()` on the named parts. The page's own rules for the element (its size, margins) still
 * win over the host's defaults here.
 *
 * The narrow layout is a container query on `.root`, not on the host: size containment makes an
 * element's intrinsic width 0, so a host that is its own container collapses in a parent that
 * sizes to its content (inline-block, a flex row, a grid `auto` column). `.root` gets an intrinsic
 * width instead (`--convo-width`), which such a parent uses.
 */
export const styles = `
:host {
  all: initial;
  display: block;
  box-sizing: border-box;
  min-width: 0;
  height: var(--convo-height, 560px);
  font: var(--convo-font, 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif);
  color: var(--convo-fg, #1d2430);
  background: var(--convo-bg, #ffffff);
  border: 1px solid var(--convo-border, #d9dde3);
  border-radius: var(--convo-radius, 10px);
  overflow: hidden;
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: inherit; }
.root { height: 100%; container-type: inline-size; contain-intrinsic-inline-size: var(--convo-width, 480px); }
.layout { display: flex; height: 100%; min-height: 0; }
.threads {
  flex: 0 0 var(--convo-sidebar-width, 210px);
  display: flex; flex-direction: column; min-height: 0; min-width: 0;
  border-right: 1px solid var(--convo-border, #d9dde3);
  background: var(--convo-sidebar-bg, #f6f7f9);
}
.threads ul { list-style: none; margin: 0; padding: 4px; overflow-y: auto; flex: 1; }
.threads li button {
  display: block; width: 100%; text-align: left; border: 0; background: none; color: inherit; font: inherit;
  padding: 6px 8px; border-radius: 6px; cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.threads li button:hover { background: var(--convo-hover, #e9ecf1); }
.threads li button[aria-current="true"] { background: var(--convo-selected, #dde4f5); font-weight: 600; }
.main { flex: 1; display: flex; flex-direction: column; min-width: 0; min-height: 0; }
header { display: flex; align-items: center; gap: 8px; padding: 8px 12px; border-bottom: 1px solid var(--convo-border, #d9dde3); }
header .title { flex: 1; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { font-size: 12px; color: var(--convo-muted, #5b6473); display: inline-flex; align-items: center; gap: 6px; }
.status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--convo-muted, #9aa3b0); }
.status[data-state="open"]::before { background: var(--convo-online, #2f9e44); }
.status[data-state="reconnecting"]::before, .status[data-state="connecting"]::before { background: var(--convo-warning, #e8a317); }
.status[data-state="stopped"]::before, .status[data-state="closed"]::before { background: var(--convo-error, #c92a2a); }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 10px; min-height: 0; }
.log .empty { color: var(--convo-muted, #5b6473); margin: auto; text-align: center; }
.log .older { align-self: center; font-size: 12px; color: var(--convo-muted, #5b6473); }
.msg { max-width: 85%; padding: 8px 12px; border-radius: var(--convo-bubble-radius, 12px); overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--convo-user-bg, #3b5bdb); color: var(--convo-user-fg, #ffffff); white-space: pre-wrap; }
.msg.pending { opacity: .65; }
.turn { align-self: flex-start; max-width: 85%; display: flex; flex-direction: column; gap: 6px; }
.turn .tools { display: flex; flex-direction: column; gap: 6px; }
.turn .agent { font-size: 12px; color: var(--convo-muted, #5b6473); }
.turn .text { background: var(--convo-assistant-bg, #f1f3f5); color: var(--convo-assistant-fg, inherit); padding: 8px 12px; border-radius: var(--convo-bubble-radius, 12px); overflow-wrap: anywhere; }
.turn .text > :first-child { margin-top: 0; }
.turn .text > :last-child { margin-bottom: 0; }
.turn .text pre { overflow-x: auto; background: var(--convo-code-bg, #e9ecef); padding: 8px; border-radius: 6px; }
.turn .text code { font-family: var(--convo-mono, ui-monospace, SFMono-Regular, Menlo, monospace); font-size: .92em; }
.turn[data-streaming="true"] .text::after { content: "▍"; animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
.note { font-size: 12px; color: var(--convo-muted, #5b6473); }
.note.thinking::after { content: "…"; }
.note.cancelled { font-style: italic; }
.note.failed { color: var(--convo-error, #c92a2a); }
.tool { font-size: 12px; border: 1px solid var(--convo-border, #d9dde3); border-radius: 8px; padding: 4px 8px; background: var(--convo-tool-bg, #fbfbfc); }
.tool summary { cursor: pointer; }
.tool[data-status="running"] summary::after { content: " — running…"; color: var(--convo-muted, #5b6473); }
.tool[data-status="error"] { border-color: var(--convo-error, #c92a2a); }
.tool pre { margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--convo-mono, ui-monospace, monospace); }
.approval { font-size: 13px; display: flex; flex-direction: column; gap: 6px; padding: 8px 10px; border-radius: 8px; border: 1px solid var(--convo-warning, #e8a317); background: var(--convo-approval-bg, #fff9eb); }
.approval:not([data-state="pending"]) { border-color: var(--convo-border, #d9dde3); background: var(--convo-tool-bg, #fbfbfc); }
.approval p, .approval pre, .approval dl, .approval dd { margin: 0; }
.approval pre { white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--convo-mono, ui-monospace, monospace); }
.approval dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 8px; }
.approval dt, .approval .outcome { font-weight: 600; }
.approval summary { cursor: pointer; overflow-wrap: anywhere; }
.approval .actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; }
.approval label { display: flex; flex-direction: column; gap: 2px; flex: 1; min-width: 10em; }
.approval input { font: inherit; color: inherit; padding: 6px 8px; border: 1px solid var(--convo-border, #d9dde3); border-radius: 6px; }
.approval button:disabled { opacity: .5; cursor: default; }
.approval .outcome.error { color: var(--convo-error, #c92a2a); font-weight: normal; }
.alert { margin: 0 12px 8px; padding: 8px 12px; border-radius: 8px; background: var(--convo-error-bg, #fff0f0); color: var(--convo-error, #c92a2a); font-size: 13px; }
.alert[hidden] { display: none; }
form { display: flex; gap: 8px; padding: 8px 12px 12px; border-top: 1px solid var(--convo-border, #d9dde3); align-items: flex-end; }
textarea {
  flex: 1; resize: none; min-height: 40px; max-height: 160px; padding: 8px 10px; font: inherit; color: inherit;
  background: var(--convo-input-bg, #ffffff); border: 1px solid var(--convo-border, #d9dde3); border-radius: 8px;
}
button { font: inherit; }
.primary, .secondary, .new {
  border-radius: 8px; padding: 8px 14px; cursor: pointer; border: 1px solid transparent;
}
.primary { background: var(--convo-accent, #3b5bdb); color: var(--convo-accent-fg, #ffffff); }
.primary:disabled { opacity: .5; cursor: default; }
.secondary { background: var(--convo-bg, #ffffff); color: var(--convo-fg, #1d2430); border-color: var(--convo-border, #d9dde3); }
.new { margin: 8px; background: var(--convo-accent, #3b5bdb); color: var(--convo-accent-fg, #ffffff); }
[hidden] { display: none !important; }
:focus-visible { outline: 2px solid var(--convo-focus, #4c6ef5); outline-offset: 2px; }
@container (max-width: 560px) {
  .layout { flex-direction: column; }
  .threads { flex: 0 0 auto; max-height: 35%; border-right: 0; border-bottom: 1px solid var(--convo-border, #d9dde3); }
}
`;
