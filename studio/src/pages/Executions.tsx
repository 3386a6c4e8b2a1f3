import { useState } from "react";
import { Link } from "../App";
import type { Execution } from "../api/workflows";
import { DataTable, ErrorBox, usePagedList, when } from "../components/common";
import { navigate } from "../router";

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`status status-${status.toLowerCase()}`} data-testid="status">
      {status}
    </span>
  );
}

export function ExecutionsPage() {
  const [status, setStatus] = useState("");
  const [workflow, setWorkflow] = useState(() => new URLSearchParams(location.search).get("workflow") ?? "");
  const [typed, setTyped] = useState(workflow);
  const list = usePagedList<Execution>("/api/v1/executions", { status: status || undefined, workflow: workflow || undefined });
  return (
    <section className="page">
      <header className="page-head">
        <h1>Executions</h1>
        <label className="inline">
          <span>Status</span>
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">all</option>
            {["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label className="inline">
          <span>Workflow</span>
          <input
            value={typed}
            placeholder="any"
            onChange={(e) => setTyped(e.target.value)}
            onBlur={() => setWorkflow(typed.trim())}
            onKeyDown={(e) => e.key === "Enter" && setWorkflow(typed.trim())}
          />
        </label>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <DataTable
          caption="Executions"
          rows={list.items}
          rowKey={(r) => r.execution_id}
          loading={list.loading}
          more={list.more}
          onSelect={(r) => navigate(`/executions/${encodeURIComponent(r.execution_id)}`)}
          columns={[
            { label: "Execution", value: (r) => <Link to={`/executions/${encodeURIComponent(r.execution_id)}`}>{r.execution_id}</Link>, text: (r) => r.execution_id },
            { label: "Workflow", value: (r) => `${r.workflow}${r.version ? ` v${r.version}` : ""}`, text: (r) => r.workflow },
            { label: "Status", value: (r) => <StatusBadge status={r.status} />, text: (r) => r.status },
            { label: "Started", value: (r) => when(r.started_at) },
            { label: "Duration", value: (r) => (r.duration_ms != null ? `${Math.round(r.duration_ms)} ms` : "—") },
          ]}
          empty={
            <p>
              No executions{status ? ` with status ${status}` : ""}
              {workflow ? ` of ${workflow}` : ""}. Open a workflow and press Run to start one.
            </p>
          }
        />
      )}
    </section>
  );
}
