import { useEffect, useMemo, useState } from "react";
import { api } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { ActionResult, ErrorBox, JsonField, parseJsonField, Props, useAction, usePagedList, when } from "../components/common";

interface Param {
  path: string;
  value?: unknown;
  type?: string;
  version?: number;
  updated_at?: number;
  [key: string]: unknown;
}

/** The parameter type a JSON value implies. */
export function typeOf(value: unknown): string {
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "string") return "string";
  return "json";
}

function paramUrl(path: string): string {
  return `/api/v1/params/${path.replace(/^\//, "").split("/").map(encodeURIComponent).join("/")}`;
}

interface TreeNode {
  name: string;
  path: string;
  children: Map<string, TreeNode>;
  param?: Param;
}

export function buildTree(params: Param[]): TreeNode {
  const root: TreeNode = { name: "/", path: "", children: new Map() };
  for (const p of params) {
    let node = root;
    const parts = p.path.replace(/^\//, "").split("/");
    parts.forEach((part, i) => {
      const path = node.path + "/" + part;
      if (!node.children.has(part)) node.children.set(part, { name: part, path, children: new Map() });
      node = node.children.get(part)!;
      if (i === parts.length - 1) node.param = p;
    });
  }
  return root;
}

function Tree({ node, selected, onSelect }: { node: TreeNode; selected: string | null; onSelect: (p: string) => void }) {
  return (
    <ul role="group">
      {[...node.children.values()].map((c) => (
        <li key={c.path} role="treeitem" aria-expanded={c.children.size ? true : undefined} aria-selected={selected === c.path}>
          {c.param ? (
            <button type="button" className={`link ${selected === c.path ? "active" : ""}`} aria-label={c.path} title={c.path} onClick={() => onSelect(c.path)}>
              {c.name}
            </button>
          ) : (
            <span className="folder">{c.name}/</span>
          )}
          {c.children.size > 0 && <Tree node={c} selected={selected} onSelect={onSelect} />}
        </li>
      ))}
    </ul>
  );
}

function ParamDetail({ path, onChange }: { path: string; onChange: () => void }) {
  const who = useSession((s) => s.who);
  const [detail, setDetail] = useState<Param | null>(null);
  const [versions, setVersions] = useState<{ items?: { version: number; created_at?: number; value?: unknown }[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [value, setValue] = useState("");
  const act = useAction();
  const load = () => {
    api.get<Param>(paramUrl(path)).then((p) => (setDetail(p), setValue(JSON.stringify(p.value, null, 2))), setError);
    api.get<{ items?: { version: number; created_at?: number }[] }>(paramUrl(path) + "/versions").then(setVersions, () => setVersions(null));
  };
  useEffect(load, [path]); // eslint-disable-line react-hooks/exhaustive-deps
  const canAct = atLeast(who, "operator");
  return (
    <div className="detail">
      <h2>{path}</h2>
      <ErrorBox error={error} />
      <Props value={detail} label="Parameter" />
      <JsonField id="param-value" label="Value (JSON)" value={value} onChange={setValue} rows={4} />
      <button type="button" disabled={!canAct || act.busy} onClick={() => act.run(async () => (await api.put(paramUrl(path), { value: parseJsonField("value", value), type: detail?.type ?? typeOf(parseJsonField("value", value)) }), load(), onChange(), "Saved a new version."))}>
        Save new version
      </button>
      <ActionResult action={act} />
      <h3>Versions</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Created</th>
            <th scope="col">Value</th>
            <th scope="col"></th>
          </tr>
        </thead>
        <tbody>
          {(versions?.items ?? []).map((v) => (
            <tr key={v.version}>
              <td>{v.version}</td>
              <td>{when(v.created_at)}</td>
              <td className="mono clip">{JSON.stringify(v.value ?? "")}</td>
              <td>
                <button type="button" disabled={!canAct || act.busy || v.version === detail?.version} onClick={() => act.run(async () => (await api.post(paramUrl(path) + "/rollback", { version: v.version }), load(), `Rolled back to version ${v.version}.`))}>
                  Roll back
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ParamsPage() {
  const who = useSession((s) => s.who);
  const list = usePagedList<Param>("/api/v1/params", { prefix: "/" });
  const [sel, setSel] = useState<string | null>(null);
  const [filter, setFilter] = useState("");
  const [form, setForm] = useState({ path: "", value: '""', type: "auto" });
  const create = useAction();
  const tree = useMemo(() => buildTree(list.items.filter((p) => p.path.includes(filter))), [list.items, filter]);
  return (
    <section className="page">
      <header className="page-head">
        <h1>Parameters</h1>
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <>
          {atLeast(who, "operator") && (
            <form className="card" aria-label="Put a parameter" onSubmit={(e) => {
                e.preventDefault();
                void create.run(async () => {
                  const value = parseJsonField("value", form.value);
                  await api.put(paramUrl(form.path), { value, type: form.type === "auto" ? typeOf(value) : form.type });
                  list.reload();
                  return `Saved ${form.path}.`;
                });
              }}
            >
              <div className="grid3">
                <label>
                  Path <input required placeholder="/app/config/timeout" value={form.path} onChange={(e) => setForm({ ...form, path: e.target.value })} />
                </label>
                <label>
                  Value (JSON) <input className="mono" value={form.value} onChange={(e) => setForm({ ...form, value: e.target.value })} />
                </label>
                <label>
                  Type
                  <select value={form.type} onChange={(e) => setForm({ ...form, type: e.target.value })}>
                    {["auto", "string", "number", "boolean", "json", "secret_ref"].map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </select>
                </label>
              </div>
              <button type="submit" className="primary">
                Put parameter
              </button>
              <ActionResult action={create} />
            </form>
          )}
          <div className="master-detail">
            <div className="table-wrap">
              <label>
                <span className="sr-only">Filter parameters</span>
                <input type="search" placeholder="Filter by path…" value={filter} onChange={(e) => setFilter(e.target.value)} />
              </label>
              {list.items.length === 0 && !list.loading ? (
                <div className="empty">No parameters. Put one above; workflows read it as <code>$param('/path')</code>.</div>
              ) : (
                <div role="tree" aria-label="Parameters by path" className="tree">
                  <Tree node={tree} selected={sel} onSelect={setSel} />
                </div>
              )}
              {list.more && (
                <button type="button" className="ghost" onClick={list.more}>
                  Load more
                </button>
              )}
            </div>
            {sel && <ParamDetail path={sel} onChange={list.reload} />}
          </div>
        </>
      )}
    </section>
  );
}
