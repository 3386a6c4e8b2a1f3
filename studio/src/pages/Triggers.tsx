import { useEffect, useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, DataTable, ErrorBox, Props, useAction, usePagedList, when } from "../components/common";

interface Trigger {
  name: string;
  type?: string;
  kind?: string;
  enabled?: boolean;
  target?: string;
  updated_at?: number;
  [key: string]: unknown;
}

interface Fire {
  id: number;
  origin: string;
  status: string;
  attempts: number;
  result_id: string | null;
  error: string | null;
  cause: string | null;
  created_at: number;
}

function TriggerDetail({ name, onChange }: { name: string; onChange: () => void }) {
  const who = useSession((s) => s.who);
  const [detail, setDetail] = useState<Trigger | null>(null);
  const [history, setHistory] = useState<Fire[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const act = useAction();
  const load = () => api.get<Trigger>(`/api/v1/triggers/${enc(name)}`).then(setDetail, setError);
  useEffect(() => {
    setHistory(undefined);
    void load();
    api.get<{ items: Fire[] }>(`/api/v1/triggers/${enc(name)}/history`, { limit: 50 }).then((p) => setHistory(p.items ?? []), () => setHistory(undefined));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name]);
  const toggle = (verb: "enable" | "disable") =>
    act.run(async () => {
      await api.post(`/api/v1/triggers/${enc(name)}/${verb}`);
      await load();
      onChange();
      return `${verb}d`;
    });
  return (
    <div className="detail">
      <h2>{name}</h2>
      <ErrorBox error={error} />
      <div className="button-row">
        <button type="button" disabled={!atLeast(who, "operator") || detail?.enabled === true || act.busy} onClick={() => toggle("enable")}>
          Enable
        </button>
        <button type="button" disabled={!atLeast(who, "operator") || detail?.enabled === false || act.busy} onClick={() => toggle("disable")}>
          Disable
        </button>
      </div>
      <ActionResult action={act} />
      <Props value={detail} label="Trigger details" />
      <h3>History</h3>
      {!history?.length ? (
        <p className="muted">It has not fired yet.</p>
      ) : (
        <table aria-label="Trigger history">
          <thead>
            <tr>
              <th scope="col">Fired</th>
              <th scope="col">Origin</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {history.map((f) => (
              <tr key={f.id}>
                <td>{when(f.created_at)}</td>
                <td>{f.origin}</td>
                <td>{f.status}</td>
                <td>{f.attempts}</td>
                <td className="mono clip">{f.error ? `${f.error}: ${f.cause ?? ""}` : (f.result_id ?? "")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function TriggersPage() {
  const list = usePagedList<Trigger>("/api/v1/triggers");
  const [sel, setSel] = useState<string | null>(null);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Triggers</h1>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <div className="master-detail">
          <DataTable
            caption="Triggers"
            rows={list.items}
            rowKey={(r) => r.name}
            selectedKey={sel}
            onSelect={(r) => setSel(r.name)}
            loading={list.loading}
            more={list.more}
            columns={[
              { label: "Name", value: (r) => r.name },
              { label: "Type", value: (r) => String(r.type ?? r.kind ?? "") },
              { label: "Enabled", value: (r) => (r.enabled === false ? "no" : "yes") },
              { label: "Target", value: (r) => String(r.target ?? "") },
              { label: "Updated", value: (r) => when(r.updated_at) },
            ]}
            empty={<p>No triggers. Create a schedule, webhook or event rule with <code>aio tr create</code> to start workflows and functions automatically.</p>}
          />
          {sel && <TriggerDetail name={sel} onChange={list.reload} />}
        </div>
      )}
    </section>
  );
}
