import { useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, DataTable, ErrorBox, JsonField, JsonView, parseJsonField, Props, useAction, usePagedList, when } from "../components/common";

interface Connection {
  name: string;
  kind: string;
  description?: string;
  updated_at?: number;
  [key: string]: unknown;
}

interface ActionDef extends Connection {
  connection?: string | null;
  operation?: string;
}

export function ConnectionsPage() {
  const who = useSession((s) => s.who);
  const connections = usePagedList<Connection>("/api/v1/connections");
  const actions = usePagedList<ActionDef>("/api/v1/actions");
  const [selConn, setSelConn] = useState<Connection | null>(null);
  const [selAction, setSelAction] = useState<ActionDef | null>(null);
  const [input, setInput] = useState("{}");
  const [result, setResult] = useState<unknown>(undefined);
  const test = useAction();
  const exec = useAction();
  const canAct = atLeast(who, "operator");
  return (
    <section className="page">
      <header className="page-head">
        <h1>Connections and actions</h1>
      </header>
      <h2>Connections</h2>
      <ErrorBox error={connections.error} />
      {!connections.error && (
        <div className="master-detail">
          <DataTable
            caption="Connections"
            rows={connections.items}
            rowKey={(r) => r.name}
            selectedKey={selConn?.name}
            onSelect={(r) => (setSelConn(r), setResult(undefined))}
            loading={connections.loading}
            more={connections.more}
            columns={[
              { label: "Name", value: (r) => r.name },
              { label: "Kind", value: (r) => r.kind },
              { label: "Description", value: (r) => r.description ?? "" },
              { label: "Updated", value: (r) => when(r.updated_at) },
            ]}
            empty={<p>No connections. Add one with <code>aio act conn create NAME --kind http --config '{"{"}"base_url": …{"}"}'</code>; secrets go in the vault and are referenced by name.</p>}
          />
          {selConn && (
            <div className="detail">
              <h2>{selConn.name}</h2>
              <Props value={selConn} label="Connection" />
              <button type="button" disabled={!canAct || test.busy} onClick={() => test.run(async () => {
                const r = await api.post<{ ok: boolean; detail?: string; error?: string; latency_ms?: number }>(`/api/v1/connections/${enc(selConn.name)}/test`);
                if (!r.ok) throw new Error(`test failed: ${r.error ?? r.detail ?? "unknown"}`);
                return `Connection works (${Math.round(r.latency_ms ?? 0)} ms) ${r.detail ?? ""}`;
              })}>
                Test connection
              </button>
              <ActionResult action={test} />
            </div>
          )}
        </div>
      )}
      <h2>Actions</h2>
      <ErrorBox error={actions.error} />
      {!actions.error && (
        <div className="master-detail">
          <DataTable
            caption="Actions"
            rows={actions.items}
            rowKey={(r) => r.name}
            selectedKey={selAction?.name}
            onSelect={(r) => (setSelAction(r), setResult(undefined))}
            loading={actions.loading}
            more={actions.more}
            columns={[
              { label: "Name", value: (r) => r.name },
              { label: "Kind", value: (r) => r.kind },
              { label: "Operation", value: (r) => r.operation ?? "" },
              { label: "Connection", value: (r) => r.connection ?? "" },
            ]}
            empty={<p>No saved actions. An action is a connector call with its parameters, usable from any workflow task by name.</p>}
          />
          {selAction && (
            <div className="detail">
              <h2>{selAction.name}</h2>
              <Props value={selAction} label="Action" />
              <JsonField id="action-input" label="Input (JSON)" value={input} onChange={setInput} rows={3} />
              <button type="button" disabled={!canAct || exec.busy} onClick={() => exec.run(async () => setResult(await api.post(`/api/v1/actions/${enc(selAction.name)}/execute`, { input: parseJsonField("input", input) ?? null })))}>
                Test action
              </button>
              <ActionResult action={exec} />
              {result !== undefined && <JsonView value={result} label="Action result" />}
            </div>
          )}
        </div>
      )}
    </section>
  );
}
