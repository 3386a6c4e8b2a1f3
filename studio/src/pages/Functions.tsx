/** Functions: versions, aliases with weighted traffic, invoke with a payload, logs. */
import { useEffect, useState } from "react";
import { navigate } from "../router";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, DataTable, ErrorBox, JsonField, JsonView, parseJsonField, useAction, usePagedList, when } from "../components/common";
import { StatusBadge } from "./Executions";

interface FnSummary {
  name: string;
  runtime: string;
  description?: string;
  latest_version?: string | null;
  updated_at?: number;
}

interface Alias {
  alias: string;
  version: string;
  routing?: { version: string; weight: number } | null;
  description?: string;
}

interface FnInfo extends FnSummary {
  trn: string;
  handler: string;
  code_size: number;
  versions: string[];
  aliases: Alias[];
  config: Record<string, unknown>;
}

interface Invocation {
  invocation_id: string;
  version: string;
  status: string;
  result?: unknown;
  error?: unknown;
  duration_ms?: number | null;
  cold_start?: boolean | null;
}

interface LogLine {
  id: number;
  ts: number;
  stream: string;
  message: string;
  version: string;
}

function FunctionDetail({ name }: { name: string }) {
  const who = useSession((s) => s.who);
  const [fn, setFn] = useState<FnInfo | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [payload, setPayload] = useState('{\n  "value": 21\n}');
  const [qualifier, setQualifier] = useState("");
  const [result, setResult] = useState<Invocation | null>(null);
  const [logs, setLogs] = useState<LogLine[] | null>(null);
  const [alias, setAlias] = useState({ name: "live", version: "", canary: "", weight: "0.1" });
  const invoke = useAction();
  const aliasAction = useAction();
  const load = () => api.get<FnInfo>(`/api/v1/functions/${enc(name)}`).then(setFn, setError);
  useEffect(() => {
    setFn(null);
    setResult(null);
    setLogs(null);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name]);
  const canAct = atLeast(who, "operator");
  const qualifiers = ["$LATEST", ...(fn?.versions ?? []), ...(fn?.aliases ?? []).map((a) => a.alias)];
  return (
    <div className="detail">
      <h2>{name}</h2>
      <ErrorBox error={error} />
      {fn && (
        <p className="muted">
          {fn.runtime} · handler <code>{fn.handler}</code> · {fn.code_size} bytes · <code>{fn.trn}</code>
        </p>
      )}
      <h3>Versions</h3>
      <p>{fn?.versions.length ? fn.versions.map((v) => <span key={v} className="tag">v{v}</span>) : <span className="muted">Only $LATEST: publish a version with aio fn publish.</span>}</p>
      <h3>Aliases</h3>
      {fn?.aliases.length ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Alias</th>
              <th scope="col">Version</th>
              <th scope="col">Traffic</th>
            </tr>
          </thead>
          <tbody>
            {fn.aliases.map((a) => (
              <tr key={a.alias}>
                <td>{a.alias}</td>
                <td>{a.version}</td>
                <td>{a.routing ? `${Math.round((1 - a.routing.weight) * 100)}% v${a.version} · ${Math.round(a.routing.weight * 100)}% v${a.routing.version}` : `100% v${a.version}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">No aliases. An alias (live, beta…) names a version and can split traffic for a canary.</p>
      )}
      {canAct && (
        <form
          className="alias-form"
          aria-label="Set an alias"
          onSubmit={(e) => {
            e.preventDefault();
            void aliasAction.run(async () => {
              const routing = alias.canary ? { version: alias.canary, weight: Number(alias.weight) } : null;
              await api.put(`/api/v1/functions/${enc(name)}/aliases/${enc(alias.name)}`, { version: alias.version, routing });
              await load();
              return `Alias ${alias.name} → v${alias.version}${routing ? ` with ${routing.weight * 100}% to v${routing.version}` : ""}.`;
            });
          }}
        >
          <div className="grid4">
            <label>
              Alias <input required value={alias.name} onChange={(e) => setAlias({ ...alias, name: e.target.value })} />
            </label>
            <label>
              Version
              <select required value={alias.version} onChange={(e) => setAlias({ ...alias, version: e.target.value })}>
                <option value="">(choose)</option>
                {(fn?.versions ?? []).map((v) => (
                  <option key={v}>{v}</option>
                ))}
              </select>
            </label>
            <label>
              Canary version
              <select value={alias.canary} onChange={(e) => setAlias({ ...alias, canary: e.target.value })}>
                <option value="">(none)</option>
                {(fn?.versions ?? []).map((v) => (
                  <option key={v}>{v}</option>
                ))}
              </select>
            </label>
            <label>
              Canary weight <input type="number" min={0} max={1} step={0.05} value={alias.weight} onChange={(e) => setAlias({ ...alias, weight: e.target.value })} />
            </label>
          </div>
          <button type="submit" disabled={aliasAction.busy}>
            Save alias
          </button>
          <ActionResult action={aliasAction} />
        </form>
      )}
      <h3>Invoke</h3>
      <JsonField id="fn-payload" label="Event (JSON)" value={payload} onChange={setPayload} rows={4} />
      <div className="button-row">
        <label className="inline">
          <span>Qualifier</span>
          <select value={qualifier} onChange={(e) => setQualifier(e.target.value)}>
            <option value="">(default)</option>
            {qualifiers.map((q) => (
              <option key={q}>{q}</option>
            ))}
          </select>
        </label>
        <button
          type="button"
          className="primary"
          disabled={!canAct || invoke.busy}
          onClick={() =>
            invoke.run(async () => {
              const r = await api.post<Invocation>(`/api/v1/functions/${enc(name)}/invoke`, parseJsonField("event", payload) ?? null, { qualifier: qualifier || undefined });
              setResult(r);
            })
          }
        >
          Invoke
        </button>
      </div>
      <ActionResult action={invoke} />
      {result && (
        <div aria-label="Invocation result">
          <p>
            <StatusBadge status={result.status} /> v{result.version} · {result.duration_ms != null ? `${Math.round(result.duration_ms)} ms` : ""}
            {result.cold_start ? " · cold start" : ""}
          </p>
          <JsonView value={result.error ?? result.result} label="Invocation output" />
        </div>
      )}
      <h3>Logs</h3>
      <button type="button" onClick={() => api.get<{ items: LogLine[] }>(`/api/v1/functions/${enc(name)}/logs`, { limit: 200 }).then((p) => setLogs(p.items ?? []), setError)}>
        Load logs
      </button>
      {logs && (logs.length === 0 ? <p className="muted">No log lines yet.</p> : (
        <pre className="json logs" aria-label="Function logs">
          {logs.map((l) => `${new Date(l.ts * 1000).toLocaleTimeString()} v${l.version} ${l.stream}: ${l.message}`).join("\n")}
        </pre>
      ))}
    </div>
  );
}

/** The functions list; `/functions/NAME` opens a function's details (a URL of its own). */
export function FunctionsPage({ name = null }: { name?: string | null }) {
  const list = usePagedList<FnSummary>("/api/v1/functions");
  const sel = name;
  const setSel = (n: string) => navigate(`/functions/${encodeURIComponent(n)}`);
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
              { label: "Runtime", value: (r) => r.runtime },
              { label: "Latest", value: (r) => (r.latest_version ? `v${r.latest_version}` : "$LATEST") },
              { label: "Updated", value: (r) => when(r.updated_at) },
            ]}
            empty={
              <p>
                No functions. Deploy one with <code>aio fn create NAME --runtime python --file handler.py</code>, then invoke it here or call it from a workflow task.
              </p>
            }
          />
          {sel && <FunctionDetail key={sel} name={sel} />}
        </div>
      )}
    </section>
  );
}
