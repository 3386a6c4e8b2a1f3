import { useEffect, useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, DataTable, Dialog, ErrorBox, JsonView, Props, useAction, usePagedList, when } from "../components/common";

interface Secret {
  name: string;
  type: string;
  description?: string;
  latest_version?: number;
  updated_at?: number;
  rotated_at?: number | null;
  [key: string]: unknown;
}

const TYPES = ["api_key", "password", "certificate", "oauth_token", "json"];

function CreateSecret({ onDone }: { onDone: () => void }) {
  const [form, setForm] = useState({ name: "", type: "api_key", value: "", description: "" });
  const act = useAction();
  return (
    <form
      className="card"
      aria-label="Create a secret"
      onSubmit={(e) => {
        e.preventDefault();
        void act.run(async () => {
          let value: unknown = form.value;
          if (form.type === "json") value = JSON.parse(form.value);
          await api.post("/api/v1/secrets", { name: form.name, type: form.type, value, description: form.description });
          setForm({ ...form, name: "", value: "" });
          onDone();
          return `Created ${form.name}.`;
        });
      }}
    >
      <h2>New secret</h2>
      <div className="grid3">
        <label>
          Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        </label>
        <label>
          Type
          <select value={form.type} onChange={(e) => setForm({ ...form, type: e.target.value })}>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Value <input required type="password" autoComplete="new-password" value={form.value} onChange={(e) => setForm({ ...form, value: e.target.value })} />
        </label>
      </div>
      <label>
        Description <input value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} />
      </label>
      <button type="submit" className="primary" disabled={act.busy}>
        Create secret
      </button>
      <ActionResult action={act} />
    </form>
  );
}

function SecretDetail({ name, onChange }: { name: string; onChange: () => void }) {
  const who = useSession((s) => s.who);
  const [detail, setDetail] = useState<Secret | null>(null);
  const [versions, setVersions] = useState<unknown>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState(false);
  const [revealed, setRevealed] = useState<unknown>(undefined);
  const [newValue, setNewValue] = useState("");
  const act = useAction();
  const load = () => {
    api.get<Secret>(`/api/v1/secrets/${enc(name)}`).then(setDetail, setError);
    api.get(`/api/v1/secrets/${enc(name)}/versions`).then(setVersions, () => undefined);
  };
  useEffect(() => {
    setRevealed(undefined);
    load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name]);
  return (
    <div className="detail">
      <h2>{name}</h2>
      <ErrorBox error={error} />
      <Props value={detail} label="Secret metadata" />
      <h3>Rotate</h3>
      <label>
        New value (empty: let the rotation target generate it){" "}
        <input type="password" autoComplete="new-password" value={newValue} onChange={(e) => setNewValue(e.target.value)} />
      </label>
      <button
        type="button"
        disabled={!atLeast(who, "operator") || act.busy}
        onClick={() =>
          act.run(async () => {
            await api.post(`/api/v1/secrets/${enc(name)}/rotate`, newValue ? { value: newValue } : {});
            setNewValue("");
            load();
            onChange();
            return "Rotated.";
          })
        }
      >
        Rotate
      </button>
      {atLeast(who, "admin") && (
        <button type="button" className="danger" onClick={() => setConfirm(true)}>
          Reveal value…
        </button>
      )}
      <ActionResult action={act} />
      {revealed !== undefined && <JsonView value={revealed} label="Revealed secret" />}
      <h3>Versions</h3>
      <JsonView value={versions} label="Secret versions" />
      {confirm && (
        <Dialog title={`Reveal ${name}?`} onClose={() => setConfirm(false)}>
          <p>The value will be shown on screen. This is recorded in the audit trail with your key.</p>
          <div className="dialog-actions">
            <button
              type="button"
              className="danger"
              onClick={() => {
                setConfirm(false);
                void act.run(async () => setRevealed(await api.post(`/api/v1/secrets/${enc(name)}/reveal`)));
              }}
            >
              Reveal
            </button>
            <button type="button" onClick={() => setConfirm(false)}>
              Cancel
            </button>
          </div>
        </Dialog>
      )}
    </div>
  );
}

export function SecretsPage() {
  const who = useSession((s) => s.who);
  const list = usePagedList<Secret>("/api/v1/secrets");
  const [sel, setSel] = useState<string | null>(null);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Secrets</h1>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <>
          {atLeast(who, "operator") && <CreateSecret onDone={list.reload} />}
          <div className="master-detail">
            <DataTable
              caption="Secrets"
              rows={list.items}
              rowKey={(r) => r.name}
              selectedKey={sel}
              onSelect={(r) => setSel(r.name)}
              loading={list.loading}
              more={list.more}
              columns={[
                { label: "Name", value: (r) => r.name },
                { label: "Type", value: (r) => r.type },
                { label: "Version", value: (r) => String(r.latest_version ?? "") },
                { label: "Rotated", value: (r) => when(r.rotated_at ?? undefined) },
                { label: "Updated", value: (r) => when(r.updated_at) },
              ]}
              empty={<p>No secrets. Create one above; workflows read it as <code>$secret.NAME</code> and it never appears in histories or logs.</p>}
            />
            {sel && <SecretDetail name={sel} onChange={list.reload} />}
          </div>
        </>
      )}
    </section>
  );
}
