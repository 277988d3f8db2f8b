"""The app's CSS: readable cards, a visible highlight, verdict badges, wrapping at 390 px."""

from __future__ import annotations

CSS = """
.qa-card, .qa-user { overflow-wrap: anywhere; word-break: break-word; }
.qa-card p { margin: 0.3em 0; }
.qa-passage { margin: 0.4em 0; padding: 0.4em 0.8em; border-left: 4px solid var(--color-accent);
  background: var(--background-fill-secondary); white-space: normal; }
mark.qa-answer { background: #ffe58f; color: #000; padding: 0.05em 0.1em; border-radius: 2px;
  outline: 1px solid #d4a106; }
strong.qa-phrase { text-decoration: underline 2px; text-underline-offset: 2px; }
.qa-cite { font-size: 0.9em; }
.qa-query { font-size: 0.9em; font-style: italic; }
.qa-notice { font-size: 0.9em; }
.qa-abstain, .qa-refused { padding: 0.4em 0.6em; border: 2px dashed var(--border-color-primary); border-radius: 6px; }
.qa-refused { font-weight: 600; white-space: pre-line; }
/* Gradio lays a validation message over the upload box, centred on one clipped line: here it
   sits above the box instead, wrapped, its lines kept, every word in view. */
#eval-file [data-testid="status-tracker"]:has(.validation-error) { position: static !important;
  overflow: visible; padding: 0 !important; }
#eval-file .validation-error { position: static; white-space: pre-line; text-align: left;
  overflow-wrap: anywhere; align-items: flex-start; border: 1px solid var(--error-border-color);
  border-radius: var(--radius-sm); }
.qa-others summary { cursor: pointer; font-weight: 600; font-size: 0.95em; padding: 0.2em 0; }
.qa-list { padding-left: 1.4em; margin: 0.3em 0; }
.qa-list li { margin: 0.5em 0; }
.qa-card .qa-list li > p { display: block; }
#eval-files button[aria-label="Remove this file"], #draft-files button[aria-label="Remove this file"] { display: none; }
.qa-snippet { font-size: 0.9em; }
.qa-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.qa-badge { display: inline-block; font-weight: 700; padding: 0.15em 0.7em; border-radius: 999px;
  color: #fff; letter-spacing: 0.02em; }
.qa-badge.qa-verbatim { background: #1a7f37; }
.qa-badge.qa-altered { background: #9a6700; }
.qa-badge.qa-paraphrase { background: #6639ba; }
.qa-table .qa-badge { white-space: nowrap; font-size: 0.85em; }
.qa-badge.qa-absent { background: #cf222e; }
.qa-diff del, .qa-legend del { background: #ffebe9; color: #82071e; text-decoration: line-through; }
.qa-diff ins, .qa-legend ins { background: #dafbe1; color: #044f1e; text-decoration: underline; }
.qa-legend { font-size: 0.9em; }
.qa-table-wrap { overflow-x: auto; max-width: 100%; }
.qa-table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.qa-table caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
.qa-table th, .qa-table td { border: 1px solid var(--border-color-primary); padding: 0.3em 0.5em;
  text-align: left; vertical-align: top; }
.qa-table td { overflow-wrap: anywhere; }
.qa-metrics { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: 0.4rem;
  margin: 0.3em 0; }
.qa-metrics div { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 0.3em 0.6em; }
.qa-metrics dt { font-size: 0.85em; }
.qa-metrics dd { margin: 0; font-size: 1.15em; font-weight: 700; }
.qa-metrics dd .qa-n { font-size: 0.7em; font-weight: 400; }
.qa-metrics-block h3 { font-size: 1em; margin: 0.3em 0; }
.qa-status-ok { color: #1a7f37; font-weight: 700; }
.qa-status-stale { color: #cf222e; font-weight: 700; }
.qa-fail td { background: rgba(207, 34, 46, 0.08); }
a:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
@media (max-width: 480px) {
  .gradio-container { padding: 0 4px !important; }
  .qa-passage { padding: 0.3em 0.5em; }
}
"""
