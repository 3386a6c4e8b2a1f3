/** The workflow editor page: palette, canvas, inspector, code view, versions and run. */
import { ReactFlowProvider } from "@xyflow/react";
import { useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { definitionOf, serverProblems, versionOf, workflows, type VersionInfo } from "../api/workflows";
import { ActionResult, Dialog, ErrorBox, errorText, JsonField, parseJsonField, useAction, when } from "../components/common";
import { diffLines } from "../dsl/diff";
import { getScope, locatePointer, parseNodeId, type ScopePath } from "../dsl/scope";
import { STATE_TYPES, type Workflow } from "../dsl/types";
import { navigate } from "../router";
import { Canvas, DND_TYPE } from "./Canvas";
import { CodeView } from "./CodeView";
import { Inspector } from "./Inspector";
import { pretty, useEditor } from "./store";

const PALETTE_HELP: Record<string, string> = {
  task: "call a connector, action, function or workflow",
  parallel: "run branches at the same time",
  map: "run a processor for each item",
  router: "choose the next state by condition",
  wait: "pause for seconds or until a time",
  set: "shape data and assign variables",
  succeed: "end successfully",
  fail: "end with an error",
};

/** Where a state added from the keyboard goes: into the selected map's processor or
 * parallel's first branch, beside any other selected state, else at the top level. */
export function targetScope(doc: Workflow, selected: string[]): ScopePath {
  if (selected.length !== 1) return [];
  const { path, name } = parseNodeId(selected[0]);
  const state = getScope(doc, path)?.states?.[name];
  if (!state) return [];
  if (state.type === "map" && state.processor) return [...path, name];
  if (state.type === "parallel" && state.branches?.length) return [...path, name, 0];
  return path;
}

function Palette({ readOnly }: { readOnly: boolean }) {
  const addState = useEditor((s) => s.addState);
  return (
    <aside className="palette" aria-label="States palette">
      <h2>States</h2>
      <p className="muted">Drag onto the canvas, or press Enter to add (into the selected map or parallel).</p>
      <ul>
        {STATE_TYPES.map((t) => (
          <li key={t}>
            <button
              type="button"
              className={`palette-item t-${t}`}
              draggable={!readOnly}
              disabled={readOnly}
              data-testid={`palette-${t}`}
              title={PALETTE_HELP[t]}
              onDragStart={(e) => {
                e.dataTransfer.setData(DND_TYPE, t);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => {
                const s = useEditor.getState();
                addState(targetScope(s.snapshot.doc, s.selected), t);
              }}
            >
              <b>{t}</b>
              <span>{PALETTE_HELP[t]}</span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  return el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable || !!el.closest?.(".cm-editor");
}

function useShortcuts(readOnly: boolean) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target) || document.querySelector("dialog[open]")) return;
      const s = useEditor.getState();
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "z" && !e.shiftKey) s.undo();
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) s.redo();
      else if (mod && key === "c") s.copy();
      else if (mod && key === "v" && !readOnly) s.paste();
      else if (mod && key === "a") s.selectAll();
      else if ((e.key === "Delete" || e.key === "Backspace") && !readOnly) s.deleteSelected();
      else if (e.key === "Escape") {
        s.select([]);
        s.selectEdges([]);
      }
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [readOnly]);
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function VersionsDialog({ name, current, onClose }: { name: string; current: Workflow; onClose: () => void }) {
  const [versions, setVersions] = useState<VersionInfo[]>([]);
  const [left, setLeft] = useState<number | null>(null);
  const [leftDoc, setLeftDoc] = useState<Workflow | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useEditor((s) => s.load);
  const ed = useEditor();
  useEffect(() => {
    workflows.versions(name).then(
      (p) => {
        const list = (p.items ?? []).slice().sort((a, b) => b.version - a.version);
        setVersions(list);
        if (list.length) setLeft(list[Math.min(1, list.length - 1)].version);
      },
      (e) => setError(e),
    );
  }, [name]);
  useEffect(() => {
    if (left === null) return;
    workflows.get(name, left).then(
      (r) => setLeftDoc(definitionOf(r)),
      (e) => setError(e),
    );
  }, [name, left]);
  const rows = leftDoc ? diffLines(pretty(leftDoc).split("\n"), pretty(current).split("\n")) : [];
  const diffBox = useRef<HTMLDivElement>(null);
  const changes = rows.filter((r) => r.kind !== "same").length;
  useEffect(() => {
    // bring the first difference into view
    const first = diffBox.current?.querySelector<HTMLElement>(".diff-row:not(.same)");
    if (first && diffBox.current) diffBox.current.scrollTop = Math.max(0, first.offsetTop - diffBox.current.offsetTop - 60);
  }, [leftDoc]);
  return (
    <Dialog title={`Versions of ${name}`} onClose={onClose}>
      <ErrorBox error={error} />
      <div className="versions-bar">
        <label>
          Compare version{" "}
          <select value={left ?? ""} onChange={(e) => setLeft(Number(e.target.value))} aria-label="Version to compare">
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version} · {when(v.created_at)}
              </option>
            ))}
          </select>
        </label>{" "}
        with the editor.
        {leftDoc && left !== null && (
          <button type="button" onClick={() => (load(name, leftDoc, left), onClose())}>
            Open v{left} in the editor
          </button>
        )}
      </div>
      <p className="muted">{leftDoc ? (changes ? `${changes} changed line(s)` : "No differences.") : ""}</p>
      <div className="diff-head" aria-hidden>
        <b>v{left}</b>
        <b>Editor{ed.version !== null ? ` (from v${ed.version})` : ""}</b>
      </div>
      <div className="diff" role="table" aria-label="Side-by-side diff" ref={diffBox}>
        {rows.map((r, i) => (
          <div key={i} className={`diff-row ${r.kind}`} role="row">
            <pre role="cell">{r.left ?? ""}</pre>
            <pre role="cell">{r.right ?? ""}</pre>
          </div>
        ))}
      </div>
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}

function RunDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const [input, setInput] = useState('{\n  "orderId": "A-100",\n  "amount": 50\n}');
  const action = useAction();
  return (
    <Dialog title={`Start ${name}`} onClose={onClose}>
      <JsonField id="run-input" label="Input (JSON)" value={input} onChange={setInput} rows={8} />
      <ActionResult action={action} />
      <div className="dialog-actions">
        <button
          type="button"
          className="primary"
          disabled={action.busy}
          onClick={() =>
            action.run(async () => {
              const env = await workflows.start(name, parseJsonField("input", input) ?? null);
              onClose();
              navigate(`/executions/${encodeURIComponent(env.execution_id)}`);
            })
          }
        >
          Start execution
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

function DeleteDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const action = useAction();
  return (
    <Dialog title={`Delete ${name}?`} onClose={onClose}>
      <p>Every version of the workflow goes; its executions stay until retention removes them.</p>
      <ActionResult action={action} />
      <div className="dialog-actions">
        <button
          type="button"
          className="danger"
          disabled={action.busy}
          onClick={() =>
            action.run(async () => {
              await workflows.remove(name);
              onClose();
              useEditor.getState().load(null, { entry: "", states: {} });
              navigate("/workflows");
            })
          }
        >
          Delete workflow
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

export function EditorPage({ name }: { name: string | null }) {
  const who = useSession((s) => s.who);
  const readOnly = !atLeast(who, "operator");
  const ed = useEditor();
  const [tab, setTab] = useState<"design" | "code">("design");
  const [loadError, setLoadError] = useState<unknown>(null);
  const [newName, setNewName] = useState("");
  const [dialog, setDialog] = useState<"versions" | "run" | "delete" | null>(null);
  const action = useAction();
  const file = useRef<HTMLInputElement>(null);
  useShortcuts(readOnly);

  useEffect(() => {
    setLoadError(null);
    if (name === null) {
      if (useEditor.getState().name !== null || !useEditor.getState().dirty) useEditor.getState().load(null, { entry: "", states: {} });
      return;
    }
    if (useEditor.getState().name === name && useEditor.getState().version !== null) return;
    workflows.get(name).then(
      (r) => useEditor.getState().load(name, definitionOf(r), versionOf(r)),
      (e) => setLoadError(e),
    );
  }, [name]);

  const doc = ed.snapshot.doc;
  const validate = () =>
    action.run(async () => {
      try {
        const report = (await workflows.validate(doc)) as { valid?: boolean };
        const problems = serverProblems(report);
        ed.setServerProblems(problems);
        return report.valid === false || problems.some((p) => p.severity === "error") ? `The server found ${problems.length} problem(s).` : "Valid.";
      } catch (e) {
        if (e instanceof ApiError && e.status === 422) {
          ed.setServerProblems(serverProblems(e));
          return `The server found ${e.detailList.length} problem(s).`;
        }
        throw e;
      }
    });
  const save = () =>
    action.run(async () => {
      const target = ed.name ?? newName.trim();
      if (!target) throw new Error("name: give the workflow a name before saving");
      try {
        const r = ed.name ? await workflows.update(target, doc) : await workflows.create(target, doc);
        ed.setServerProblems([]);
        ed.markSaved(target, versionOf(r));
        if (!name) navigate(`/workflows/${encodeURIComponent(target)}`);
        return `Saved ${target} as version ${versionOf(r) ?? "?"}.`;
      } catch (e) {
        if (e instanceof ApiError && e.status === 422) {
          const problems = serverProblems(e).filter((p) => p.pointer !== "");
          ed.setServerProblems(problems);
          throw new Error(`Not saved: ${problems.length ? `${problems.length} problem(s), shown on the states` : errorText(e)}`);
        }
        throw e;
      }
    });

  const allProblems = [...ed.problems, ...ed.serverProblems];
  return (
    <section className="editor-page" aria-label="Workflow editor">
      <div className="toolbar" role="toolbar" aria-label="Editor actions">
        {ed.name ? (
          <>
            <h1 title={ed.name}>{ed.name}</h1>
            {ed.version !== null && <span className="tag">v{ed.version}</span>}
            {ed.dirty && <span className="tag warn">unsaved</span>}
          </>
        ) : (
          <label className="inline">
            <span>Name</span>
            <input value={newName} onChange={(e) => setNewName(e.target.value)} placeholder="order-processing" aria-label="Workflow name" data-testid="workflow-name" />
          </label>
        )}
        <button type="button" onClick={ed.undo} disabled={!ed.canUndo} title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button type="button" onClick={ed.redo} disabled={!ed.canRedo} title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button type="button" onClick={ed.autoLayout} disabled={readOnly}>
          Auto layout
        </button>
        <button type="button" onClick={validate} disabled={action.busy}>
          Validate
        </button>
        <button type="button" className="primary" onClick={save} disabled={readOnly || action.busy}>
          {ed.name ? "Save new version" : "Save"}
        </button>
        <button type="button" onClick={() => setDialog("versions")} disabled={!ed.name}>
          Versions
        </button>
        <button type="button" onClick={() => setDialog("run")} disabled={!ed.name || ed.dirty || readOnly} title={ed.dirty ? "save first" : undefined}>
          Run
        </button>
        <button type="button" onClick={() => download(`${ed.name ?? (newName || "workflow")}.json`, pretty(doc))}>
          Export
        </button>
        <button type="button" onClick={() => file.current?.click()} disabled={readOnly}>
          Import
        </button>
        <input
          ref={file}
          type="file"
          accept="application/json,.json"
          hidden
          aria-label="Import workflow JSON"
          onChange={async (e) => {
            const f = e.target.files?.[0];
            if (!f) return;
            const text = await f.text();
            ed.setCode(text);
            e.target.value = "";
          }}
        />
        <button type="button" className="danger" onClick={() => setDialog("delete")} disabled={!ed.name || readOnly}>
          Delete
        </button>
        <div className="tabs" role="tablist" aria-label="View">
          <button role="tab" aria-selected={tab === "design"} onClick={() => setTab("design")}>
            Design
          </button>
          <button role="tab" aria-selected={tab === "code"} onClick={() => setTab("code")} data-testid="tab-code">
            Code
          </button>
        </div>
      </div>
      <ErrorBox error={loadError} />
      <ActionResult action={action} />
      {ed.notice && (
        <div className="notice" role="status">
          {ed.notice}
        </div>
      )}
      {tab === "design" ? (
        <div className="editor-body">
          <Palette readOnly={readOnly} />
          <ReactFlowProvider>
            <Canvas
              doc={doc}
              positions={ed.snapshot.positions}
              problems={allProblems}
              selected={ed.selected}
              selectedEdges={ed.selectedEdges}
              onSelectEdges={ed.selectEdges}
              readOnly={readOnly}
              onSelect={ed.select}
              onMove={ed.move}
              onConnect={ed.connect}
              onDropState={(path, type, at) => ed.addState(path, type, at)}
            />
          </ReactFlowProvider>
          <Inspector readOnly={readOnly} />
        </div>
      ) : (
        <div className="editor-code">
          <CodeView value={ed.code} error={ed.codeError} readOnly={readOnly} onChange={ed.setCode} />
          <aside className="problems" aria-label="Problems">
            <h2>Problems</h2>
            {allProblems.length === 0 ? (
              <p className="muted">None.</p>
            ) : (
              <ul className="problem-list">
                {allProblems.map((p, i) => (
                  <li key={i} className={p.severity}>
                    <button
                      type="button"
                      className="link"
                      onClick={() => {
                        const at = locatePointer(p.pointer);
                        if (at.id) ed.select([at.id]);
                        setTab("design");
                      }}
                    >
                      <code>{p.pointer || "/"}</code>
                    </button>{" "}
                    {p.message} <span className="muted">({p.source})</span>
                  </li>
                ))}
              </ul>
            )}
          </aside>
        </div>
      )}
      <footer className="statusbar" aria-live="polite">
        {Object.keys(doc.states ?? {}).length} states · {allProblems.filter((p) => p.severity === "error").length} problems
        {ed.lastLabel && <> · last edit: {ed.lastLabel}</>}
      </footer>
      {dialog === "versions" && ed.name && <VersionsDialog name={ed.name} current={doc} onClose={() => setDialog(null)} />}
      {dialog === "run" && ed.name && <RunDialog name={ed.name} onClose={() => setDialog(null)} />}
      {dialog === "delete" && ed.name && <DeleteDialog name={ed.name} onClose={() => setDialog(null)} />}
    </section>
  );
}
