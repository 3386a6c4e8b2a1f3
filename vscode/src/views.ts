/**
 * What the tree and the execution panel show, as plain data and HTML (no `vscode` import): the
 * extension maps `TreeNode`s onto TreeItems and puts `executionHtml` in a webview.
 */
import type { Execution, HistoryEvent, Template } from "./api";

export interface TreeNode {
  id: string;
  label: string;
  description?: string;
  tooltip?: string;
  kind: "workflow" | "execution" | "message";
  icon: string; // a codicon name
  collapsible: boolean;
  workflow?: string;
  executionId?: string;
}

const STATUS_ICONS: Record<string, string> = {
  RUNNING: "sync~spin",
  SUCCEEDED: "pass",
  FAILED: "error",
  TIMED_OUT: "watch",
  ABORTED: "circle-slash",
};

export function workflowNodes(templates: Template[]): TreeNode[] {
  if (templates.length === 0) return [message("no workflows on this server yet")];
  return [...templates]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((t) => ({
      id: `wf:${t.name}`,
      label: t.name,
      description: `v${t.version}`,
      tooltip: t.description || t.trn,
      kind: "workflow",
      icon: "type-hierarchy",
      collapsible: true,
      workflow: t.name,
    }));
}

export function executionNodes(executions: Execution[], now: number = Date.now() / 1000): TreeNode[] {
  if (executions.length === 0) return [message("no executions")];
  return [...executions]
    .sort((a, b) => b.started_at - a.started_at)
    .map((e) => ({
      id: `ex:${e.execution_id}`,
      label: e.execution_id,
      description: `${e.status} · v${e.version} · ${ago(now - e.started_at)}`,
      tooltip: e.error?.error ? `${e.error.error}: ${e.error.cause ?? ""}` : e.status,
      kind: "execution",
      icon: STATUS_ICONS[e.status] ?? "circle-outline",
      collapsible: false,
      workflow: e.workflow,
      executionId: e.execution_id,
    }));
}

export function message(text: string): TreeNode {
  return { id: `msg:${text}`, label: text, kind: "message", icon: "info", collapsible: false };
}

export function ago(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function json(value: unknown): string {
  return escapeHtml(value === undefined ? "—" : JSON.stringify(value, null, 2));
}

/** The panel for one execution: status, input, output or error, and the history as a table.
 *  Everything from the server is escaped; the CSP allows no script at all. */
export function executionHtml(e: Execution, history: HistoryEvent[], studioUrl: string): string {
  const rows = history
    .map(
      (h) =>
        `<tr><td>${h.seq}</td><td>${escapeHtml(new Date(h.ts * 1000).toISOString())}</td><td>${escapeHtml(h.type)}</td>` +
        `<td>${escapeHtml(h.state ?? "")}</td><td><pre>${json(h.detail)}</pre></td></tr>`,
    )
    .join("\n");
  const result =
    e.status === "SUCCEEDED"
      ? `<h2>Output</h2><pre>${json(e.output)}</pre>`
      : e.error
        ? `<h2>Error</h2><pre>${escapeHtml(`${e.error.error ?? ""}: ${e.error.cause ?? ""}`)}</pre>`
        : "";
  return `<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<style>body{font-family:var(--vscode-font-family);} td{vertical-align:top;padding:2px 8px;} pre{margin:0;white-space:pre-wrap;}</style>
<title>${escapeHtml(e.execution_id)}</title></head>
<body>
<h1>${escapeHtml(e.workflow)} · ${escapeHtml(e.execution_id)}</h1>
<p>Status <b>${escapeHtml(e.status)}</b> · version ${e.version}${e.duration_ms != null ? ` · ${Math.round(e.duration_ms)} ms` : ""} ·
<a href="${escapeHtml(studioUrl)}">open in the Studio</a></p>
<h2>Input</h2><pre>${json(e.input)}</pre>
${result}
<h2>History</h2>
<table><thead><tr><th>#</th><th>time</th><th>event</th><th>state</th><th>detail</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>`;
}
