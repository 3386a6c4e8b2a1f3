/** Agent modules (issue 20): installed packages with their verification state (verified, or
 * quarantined with the reason), SBOM, permissions and invocations; admins approve a quarantined
 * module, quarantine a running one or remove it. */
import { useEffect, useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { permissionLines, sbomComponents, stateText, type ModuleInfo } from "../api/modules";
import { ActionResult, DataTable, Dialog, ErrorBox, JsonView, useAction, usePagedList, when } from "../components/common";

function StateBadge({ state }: { state: string }) {
  const cls = state === "quarantined" ? "failed" : state === "approved" ? "running" : "succeeded";
  return (
    <span className={`status status-${cls}`} data-testid="module-state">
      {state}
    </span>
  );
}

function Confirm({ title, text, verb, onYes, onClose }: { title: string; text: string; verb: string; onYes: () => Promise<void>; onClose: () => void }) {
  const act = useAction();
  return (
    <Dialog title={title} onClose={onClose}>
      <p>{text}</p>
      <ActionResult action={act} />
      <div className="dialog-actions">
        <button type="button" className="danger" disabled={act.busy} onClick={() => act.run(async () => (await onYes(), onClose()))}>
          {verb}
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

function ModuleDetail({ name, version, onChange, onGone }: { name: string; version: string; onChange: () => void; onGone: () => void }) {
  const who = useSession((s) => s.who);
  const admin = atLeast(who, "admin");
  const [m, setM] = useState<ModuleInfo | null>(null);
  const [sbom, setSbom] = useState<unknown>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [reason, setReason] = useState("");
  const [dialog, setDialog] = useState<"approve" | "remove" | null>(null);
  const act = useAction();
  const q = { version };
  const load = () => api.get<ModuleInfo>(`/api/v1/modules/${enc(name)}`, q).then(setM, setError);
  useEffect(() => {
    setM(null);
    setSbom(undefined);
    setError(null);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name, version]);
  const after = async (verb: string) => {
    await load();
    onChange();
    return verb;
  };
  return (
    <div className="detail" aria-label="Module details">
      <h2>
        {name} <span className="muted">{version}</span>
      </h2>
      <ErrorBox error={error} />
      {m && (
        <>
          <p>
            <StateBadge state={m.state} /> {m.runnable ? "runnable" : "not runnable"}
          </p>
          <p data-testid="module-state-text">{stateText(m)}</p>
          {(m.reasons ?? []).length > 0 && (
            <ul className="problem-list" aria-label="Reasons">
              {(m.reasons ?? []).map((r, i) => (
                <li key={i} className={m.state === "quarantined" ? "error" : "warning"}>
                  {r}
                </li>
              ))}
            </ul>
          )}
          <div className="button-row">
            <button type="button" disabled={!atLeast(who, "operator") || act.busy} onClick={() => act.run(async () => {
              const out = await api.post<ModuleInfo>(`/api/v1/modules/${enc(name)}/verify`, undefined, q);
              await load();
              onChange();
              return out.state === "quarantined" ? { warning: `Layers checked: quarantined (${(out.reasons ?? []).join("; ")}).` } : "Layers checked: they match the installed digests.";
            })}>
              Verify layers
            </button>
            {admin && m.state === "quarantined" && (
              <button type="button" disabled={act.busy} onClick={() => setDialog("approve")}>
                Approve…
              </button>
            )}
            {admin && (
              <button type="button" className="danger" disabled={act.busy} onClick={() => setDialog("remove")}>
                Remove…
              </button>
            )}
          </div>
          {admin && m.state !== "quarantined" && (
            <form
              className="inline-form"
              aria-label="Quarantine the module"
              onSubmit={(e) => {
                e.preventDefault();
                void act.run(async () => {
                  await api.post(`/api/v1/modules/${enc(name)}/quarantine`, { version, ...(reason.trim() ? { reason: reason.trim() } : {}) });
                  setReason("");
                  return after("Quarantined: it no longer runs.");
                });
              }}
            >
              <label>
                Reason <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="quarantined by an admin" />
              </label>{" "}
              <button type="submit" className="danger" disabled={act.busy}>
                Quarantine
              </button>
            </form>
          )}
          <ActionResult action={act} />
          <h3>Permissions</h3>
          <ul aria-label="Permissions" data-testid="module-permissions">
            {permissionLines(m.permissions).map((l) => (
              <li key={l}>{l}</li>
            ))}
          </ul>
          <h3>Invocations</h3>
          <p data-testid="module-invocations">
            {m.invocations?.total ?? 0} calls, {m.invocations?.failed ?? 0} failed · circuit breaker {typeof m.breaker === "string" ? m.breaker : JSON.stringify(m.breaker ?? "closed")}
          </p>
          <h3>Package</h3>
          <dl className="props" aria-label="Package">
            {(
              [
                ["runtime", m.runtime],
                ["intents", (m.intents ?? []).join(", ")],
                ["signer", m.signer],
                ["digest", m.digest],
                ["source", m.source],
                ["installed", `${when(m.installed_at)}${m.installed_by ? ` by ${m.installed_by}` : ""}`],
                ["approved", m.approved_at ? `${when(m.approved_at)} by ${m.approved_by ?? "?"}` : null],
                ["policies", m.policies ? JSON.stringify(m.policies) : null],
              ] as [string, unknown][]
            ).map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd className={k === "digest" ? "mono clip" : undefined}>{v === null || v === undefined || v === "" ? "—" : String(v)}</dd>
              </div>
            ))}
          </dl>
          <h3>SBOM</h3>
          {!m.sbom ? (
            <p className="muted">No SBOM stored.</p>
          ) : sbom === undefined ? (
            <button type="button" onClick={() => api.get(`/api/v1/modules/${enc(name)}/sbom`, q).then(setSbom, setError)}>
              Show SBOM ({m.sbom.format})
            </button>
          ) : (
            <>
              <table aria-label="SBOM components">
                <thead>
                  <tr>
                    <th scope="col">Component</th>
                    <th scope="col">Version</th>
                    <th scope="col">License</th>
                  </tr>
                </thead>
                <tbody>
                  {sbomComponents(sbom).map((c, i) => (
                    <tr key={i}>
                      <td>{c.name}</td>
                      <td>{c.version}</td>
                      <td>{c.license}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <details>
                <summary>SBOM document</summary>
                <JsonView value={(sbom as { sbom?: unknown }).sbom ?? sbom} label="SBOM" />
              </details>
            </>
          )}
        </>
      )}
      {dialog === "approve" && (
        <Confirm
          title={`Approve ${name} ${version}?`}
          text={`It becomes runnable although: ${(m?.reasons ?? []).join("; ")}. The approval is audited with these reasons.`}
          verb="Approve module"
          onYes={async () => {
            await api.post(`/api/v1/modules/${enc(name)}/approve`, undefined, q);
            await after("");
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog === "remove" && (
        <Confirm
          title={`Remove ${name} ${version}?`}
          text="The package and its layers are deleted from this server; the removal is audited."
          verb="Remove module"
          onYes={async () => {
            await api.del(`/api/v1/modules/${enc(name)}?version=${enc(version)}`);
            onChange();
            onGone();
          }}
          onClose={() => setDialog(null)}
        />
      )}
    </div>
  );
}

export function ModulesPage() {
  const [state, setState] = useState("");
  const list = usePagedList<ModuleInfo>("/api/v1/modules", { state: state || undefined });
  const [sel, setSel] = useState<{ name: string; version: string } | null>(null);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Modules</h1>
        <label>
          State{" "}
          <select value={state} onChange={(e) => setState(e.target.value)} aria-label="Filter by state">
            <option value="">all</option>
            <option value="verified">verified</option>
            <option value="approved">approved</option>
            <option value="quarantined">quarantined</option>
          </select>
        </label>
      </header>
      <p className="muted">Signed agent packages. Anything that fails verification is quarantined: stored, listed with the reason, never run.</p>
      <ErrorBox error={list.error} />
      {!list.error && (
        <div className="master-detail">
          <DataTable
            caption="Modules"
            rows={list.items}
            rowKey={(r) => `${r.name}@${r.version}`}
            selectedKey={sel ? `${sel.name}@${sel.version}` : null}
            onSelect={(r) => setSel({ name: r.name, version: r.version })}
            loading={list.loading}
            more={list.more}
            columns={[
              { label: "Name", value: (r) => r.name },
              { label: "Version", value: (r) => r.version },
              { label: "Runtime", value: (r) => r.runtime ?? "" },
              { label: "State", value: (r) => <StateBadge state={r.state} />, text: (r) => r.state },
              { label: "Reason", value: (r) => <span className="clip">{(r.reasons ?? []).join("; ")}</span>, text: (r) => (r.reasons ?? []).join("; ") },
              { label: "Calls", value: (r) => String(r.invocations?.total ?? 0) },
            ]}
            empty={<p>No modules installed. Install a signed package with <code>aio module install ./package.tar</code> (trust its key first with <code>aio module trust add KEY.pub</code>).</p>}
          />
          {sel && <ModuleDetail key={`${sel.name}@${sel.version}`} name={sel.name} version={sel.version} onChange={list.reload} onGone={() => setSel(null)} />}
        </div>
      )}
    </section>
  );
}
