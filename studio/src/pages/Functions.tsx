import { useEffect, useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, DataTable, ErrorBox, JsonField, JsonView, parseJsonField, useAction, usePagedList, when } from "../components/common";

interface Fn {
  name: string;
  runtime?: string;
  latest_version?: number;
  version?: number;
  updated_at?: number;
  aliases?: Record<string, unknown> | unknown[];
  [key: string]: unknown;
}

function FunctionDetail({ name }: { name: string }) {
  const who = useSession((s) => s.who);
  const [detail, setDetail] = useState<Fn | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [payload, setPayload] = useState("{}");
  const [result, setResult] = useState<unknown>(undefined);
  const [logs, setLogs] = useState<unknown>(undefined);
  const [alias, setAlias] = useState({ name: "live", version: "", weights: "" });
  const invoke = useAction();
  const aliasAction = useAction();
  useEffect(() => {
    setDetail(null);
    setResult(undefined);
    setLogs(undefined);
    api.get<Fn>(`/api/v1/functions/${enc(name)}`).then(setDetail, setError);
  }, [name]);
  const canAct = atLeast(who, "operator");
  return (
    <div className="detail">
      <h2>{name}</h2>
      <ErrorBox error={error} />
      {detail && <JsonView value={detail} label="Function details" />}
      <h3>Invoke</h3>
      <JsonField id="fn-payload" label="Event (JSON)" value={payload} onChange={setPayload} rows={4} />
      <button type="button" className="primary" disabled={!canAct || invoke.busy} onClick={() => invoke.run(async () => setResult(await api.post(`/api/v1/functions/${enc(name)}/invoke`, parseJsonField("event", payload) ?? null)))}>
        Invoke
      </button>
      <ActionResult action={invoke} />
      {result !== undefined && <JsonView value={result} label="Invocation result" />}
      <h3>Alias</h3>
      <div className="grid3">
        <label>
          Alias <input value={alias.name} onChange={(e) => setAlias({ ...alias, name: e.target.value })} />
        </label>
        <label>
          Version <input value={alias.version} onChange={(e) => setAlias({ ...alias, version: e.target.value })} inputMode="numeric" />
        </label>
        <label>
          Traffic (JSON, e.g. {'{"2": 0.1}'}) <input value={alias.weights} onChange={(e) => setAlias({ ...alias, weights: e.target.value })} />
        </label>
      </div>
      <button
        type="button"
        disabled={!canAct || aliasAction.busy}
        onClick={() =>
          aliasAction.run(async () => {
            if (alias.version) await api.put(`/api/v1/functions/${enc(name)}/aliases/${enc(alias.name)}`, { version: Number(alias.version) });
            if (alias.weights) await api.post(`/api/v1/functions/${enc(name)}/aliases/${enc(alias.name)}/traffic`, { weights: parseJsonField("traffic", alias.weights) });
            setDetail(await api.get<Fn>(`/api/v1/functions/${enc(name)}`));
            return "Alias updated.";
          })
        }
      >
        Save alias
      </button>
      <ActionResult action={aliasAction} />
      <h3>Logs</h3>
      <button type="button" onClick={() => api.get(`/api/v1/functions/${enc(name)}/logs`, { limit: 100 }).then(setLogs, setError)}>
        Load logs
      </button>
      {logs !== undefined && <JsonView value={logs} label="Function logs" />}
    </div>
  );
}

export function FunctionsPage() {
  const list = usePagedList<Fn>("/api/v1/functions");
  const [sel, setSel] = useState<string | null>(null);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Functions</h1>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <div className="master-detail">
          <DataTable
            caption="Functions"
            rows={list.items}
            rowKey={(r) => r.name}
            selectedKey={sel}
            onSelect={(r) => setSel(r.name)}
            loading={list.loading}
            more={list.more}
            columns={[
              { label: "Name", value: (r) => r.name },
              { label: "Runtime", value: (r) => String(r.runtime ?? "") },
              { label: "Version", value: (r) => String(r.latest_version ?? r.version ?? "") },
              { label: "Updated", value: (r) => when(r.updated_at) },
            ]}
            empty={<p>No functions. Deploy one with <code>aio fn create NAME --runtime python --code handler.py</code>, then invoke it here.</p>}
          />
          {sel && <FunctionDetail name={sel} />}
        </div>
      )}
    </section>
  );
}
