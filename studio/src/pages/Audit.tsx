import { useState } from "react";
import { DataTable, ErrorBox, Props, usePagedList, when } from "../components/common";

interface AuditRecord {
  id: number;
  ts: number;
  key_id: string | null;
  method: string | null;
  path: string | null;
  action: string;
  resource: string | null;
  status: number | null;
  details?: unknown;
}

export function AuditPage() {
  const [action, setAction] = useState("");
  const list = usePagedList<AuditRecord>("/api/v1/audit", { action: action || undefined });
  const [sel, setSel] = useState<AuditRecord | null>(null);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Audit</h1>
        <label className="inline">
          <span>Action</span>
          <input placeholder="e.g. secrets.reveal" value={action} onChange={(e) => setAction(e.target.value)} />
        </label>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <div className="master-detail">
          <DataTable
            caption="Audit records"
            rows={list.items}
            rowKey={(r) => String(r.id)}
            selectedKey={sel ? String(sel.id) : null}
            onSelect={setSel}
            loading={list.loading}
            more={list.more}
            columns={[
              { label: "Time", value: (r) => when(r.ts) },
              { label: "Action", value: (r) => r.action },
              { label: "Resource", value: (r) => r.resource ?? "" },
              { label: "Request", value: (r) => `${r.method ?? ""} ${r.path ?? ""}` },
              { label: "Status", value: (r) => String(r.status ?? "") },
              { label: "Key", value: (r) => r.key_id ?? "" },
            ]}
            empty={<p>No audit records{action ? ` for ${action}` : ""}. Every change made through the API is recorded here.</p>}
          />
          {sel && (
            <div className="detail">
              <h2>Record {sel.id}</h2>
              <Props value={sel as unknown as Record<string, unknown>} label="Audit record" />
            </div>
          )}
        </div>
      )}
    </section>
  );
}
