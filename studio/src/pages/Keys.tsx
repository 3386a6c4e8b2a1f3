import { useState } from "react";
import { api, enc } from "../api/client";
import { ActionResult, DataTable, ErrorBox, useAction, usePagedList, when } from "../components/common";

interface Key {
  id: string;
  name: string;
  role: string;
  prefix: string;
  tenant: string;
  created_at: number;
  revoked_at?: number | null;
}

export function KeysPage() {
  const list = usePagedList<Key>("/api/v1/keys");
  const [form, setForm] = useState({ name: "", role: "viewer" });
  const [created, setCreated] = useState<string | null>(null);
  const act = useAction();
  return (
    <section className="page">
      <header className="page-head">
        <h1>API keys</h1>
      </header>
      <form
        className="card"
        aria-label="Create an API key"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(async () => {
            const r = await api.post<{ key: string }>("/api/v1/keys", form);
            setCreated(r.key);
            list.reload();
          });
        }}
      >
        <div className="grid3">
          <label>
            Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
          </label>
          <label>
            Role
            <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>
              <option>viewer</option>
              <option>operator</option>
              <option>admin</option>
            </select>
          </label>
          <button type="submit" className="primary" disabled={act.busy}>
            Create key
          </button>
        </div>
        {created && (
          <p className="notice ok" role="status">
            New key (shown once, copy it now): <code data-testid="new-key">{created}</code>
          </p>
        )}
        <ActionResult action={act} />
      </form>
      <ErrorBox error={list.error} />
      {!list.error && (
        <DataTable
          caption="API keys"
          rows={list.items}
          rowKey={(r) => r.id}
          loading={list.loading}
          more={list.more}
          columns={[
            { label: "Name", value: (r) => r.name },
            { label: "Role", value: (r) => r.role },
            { label: "Prefix", value: (r) => <code>{r.prefix}</code>, text: (r) => r.prefix },
            { label: "Created", value: (r) => when(r.created_at) },
            {
              label: "Status",
              value: (r) =>
                r.revoked_at ? (
                  `revoked ${when(r.revoked_at)}`
                ) : (
                  <button type="button" className="danger link" onClick={() => act.run(async () => (await api.del(`/api/v1/keys/${enc(r.id)}`), list.reload(), `Revoked ${r.name}.`))}>
                    Revoke {r.name}
                  </button>
                ),
              text: (r) => (r.revoked_at ? "revoked" : "active"),
            },
          ]}
          empty={<p>No keys besides yours. Create viewer keys for people who only watch, operator keys for those who run things.</p>}
        />
      )}
    </section>
  );
}
