/** The workflow editor page: palette, canvas, inspector, code view, versions and run. */
import { ReactFlowProvider } from "@xyflow/react";
import { useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, type Page } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { definitionOf, serverProblems, versionOf, workflows, type Execution, type VersionInfo } from "../api/workflows";
import { ActionResult, Dialog, ErrorBox, errorText, JsonField, parseJsonField, plural, useAction, when } from "../components/common";
import { aslPointerToDisplay, countStates, drawable, isAsl } from "../dsl/asl";
import { diffLines } from "../dsl/diff";
import { getScope, locatePointer, parseNodeId, type ScopePath } from "../dsl/scope";
import { STATE_TYPES, type Workflow } from "../dsl/types";
import { navigate } from "../router";
import { AslInspector } from "./AslInspector";
import { Canvas, DND_TYPE } from "./Canvas";
import { CodeView } from "./CodeView";
import { CopilotPanel } from "./CopilotPanel";
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
      <p className="muted">{leftDoc ? (changes ? `${plural(changes, "changed line")}` : "No differences.") : ""}</p>
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

/** The input of the workflow's most recent execution, or null when it has none. */
export async function lastInput(name: string): Promise<unknown | null> {
  const page = await api.get<Page<Execution>>("/api/v1/executions", { workflow: name, limit: 1 });
  const last = page.items?.[0];
  return last && last.input !== undefined ? last.input : null;
}

function RunDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const [input, setInput] = useState("{}");
  const [from, setFrom] = useState<string | null>(null);
  const touched = useRef(false);
  useEffect(() => {
    // pre-fill the input the last run used (what one usually runs again)
    lastInput(name).then(
      (v) => {
        if (touched.current || v === null) return;
        setInput(JSON.stringify(v, null, 2));
        setFrom("the last execution's input");
      },
      () => undefined,
    );
  }, [name]);
  const action = useAction();
  return (
    <Dialog title={`Start ${name}`} onClose={onClose}>
      <JsonField id="run-input" label="Input (JSON)" value={input} onChange={(v) => ((touched.current = true), setInput(v))} rows={8} />
      {from && <p className="muted">Pre-filled with {from}.</p>}
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
  const [copilotOpen, setCopilotOpen] = useState(false);
  const action = useAction();
  const file = useRef<HTMLInputElement>(null);
  const asl = isAsl(ed.snapshot.doc);
  // an ASL definition is drawn read-only (its Code view edits it) and saved as it is
  useShortcuts(readOnly || asl);

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
  const drawn = useMemo(() => drawable(doc), [doc]);
  const [nameError, setNameError] = useState<string | null>(null);
  // the server's problems are of the document it saw: after an edit, ask again (debounced), so
  // markers and the banner go away once the problem is fixed
  const hadServerProblems = ed.serverProblems.length > 0;
  useEffect(() => {
    if (!hadServerProblems) return;
    const t = window.setTimeout(() => {
      workflows.validate(doc).then(
        (report) => {
          if (useEditor.getState().snapshot.doc !== doc) return;
          const problems = serverProblems(report);
          useEditor.getState().setServerProblems(problems);
          if (!problems.length) action.clear();
        },
        () => undefined,
      );
    }, 500);
    return () => window.clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc]);
  const validate = () =>
    action.run(async () => {
      try {
        const report = (await workflows.validate(doc)) as { valid?: boolean };
        const problems = serverProblems(report);
        ed.setServerProblems(problems);
        return report.valid === false || problems.some((p) => p.severity === "error") ? { warning: `The server found ${plural(problems.length, "problem")}.` } : "Valid.";
      } catch (e) {
        if (e instanceof ApiError && e.status === 422) {
          ed.setServerProblems(serverProblems(e));
          return { warning: `The server found ${plural(e.detailList.length, "problem")}.` };
        }
        throw e;
      }
    });
  const save = () =>
    action.run(async () => {
      const target = ed.name ?? newName.trim();
      if (!target) throw new Error("name: give the workflow a name before saving");
      if (!ed.name && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(target)) {
        const why = `"${target}" is not a valid workflow name: use letters, digits, "_", "." and "-", starting with a letter or digit, at most 128`;
        setNameError(why);
        throw new Error(`Not saved: ${why}`);
      }
      setNameError(null);
      if (ed.name && !ed.dirty && ed.version !== null) return `No changes since version ${ed.version}: nothing saved.`;
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
          throw new Error(`Not saved: ${problems.length ? `${plural(problems.length, "problem")}, shown on the states` : errorText(e)}`);
        }
        throw e;
      }
    });

  const allProblems = [...ed.problems, ...ed.serverProblems];
  const drawnProblems = useMemo(
    () => (asl ? allProblems.map((p) => ({ ...p, pointer: aslPointerToDisplay(p.pointer) })) : allProblems),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [asl, ed.problems, ed.serverProblems],
  );
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
            <input
              value={newName}
              onChange={(e) => (setNewName(e.target.value), setNameError(null))}
              placeholder="order-processing"
              aria-label="Workflow name"
              aria-invalid={!!nameError}
              title={nameError ?? undefined}
              data-testid="workflow-name"
            />
            {nameError && (
              <span className="field-error" data-testid="workflow-name-error">
                {nameError}
              </span>
            )}
          </label>
        )}
        <button type="button" onClick={ed.undo} disabled={!ed.canUndo} title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button type="button" onClick={ed.redo} disabled={!ed.canRedo} title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button type="button" onClick={ed.autoLayout} disabled={readOnly || asl}>
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
        <button
          type="button"
          aria-pressed={copilotOpen}
          onClick={() => (setCopilotOpen(!copilotOpen), setTab("design"))}
          title="suggestions, simulation and step-by-step edits of a draft"
          data-testid="copilot-toggle"
        >
          Copilot
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
      {asl && (
        <div className="notice asl" role="note" data-testid="asl-banner">
          Amazon States Language definition: the canvas shows it read-only. Edit it in the <b>Code</b> view; it is saved as ASL,
          exactly as written (never converted to the StepFlow DSL).
        </div>
      )}
      {ed.notice && (
        <div className="notice" role="status">
          {ed.notice}
        </div>
      )}
      {tab === "design" ? (
        <div className={copilotOpen ? "editor-body with-copilot" : "editor-body"}>
          <Palette readOnly={readOnly || asl} />
          <ReactFlowProvider>
            <Canvas
              doc={drawn}
              positions={ed.snapshot.positions}
              problems={drawnProblems}
              selected={ed.selected}
              selectedEdges={ed.selectedEdges}
              onSelectEdges={ed.selectEdges}
              readOnly={readOnly || asl}
              onSelect={ed.select}
              onMove={ed.move}
              onConnect={ed.connect}
              onDropState={(path, type, at) => ed.addState(path, type, at)}
            />
          </ReactFlowProvider>
          {copilotOpen ? (
            <CopilotPanel name={ed.name} readOnly={readOnly} asl={asl} onClose={() => setCopilotOpen(false)} />
          ) : asl ? <AslInspector doc={doc} selected={ed.selected} problems={allProblems} onEditCode={() => setTab("code")} /> : <Inspector readOnly={readOnly} />}
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
                        const at = locatePointer(asl ? aslPointerToDisplay(p.pointer) : p.pointer);
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
        {plural(countStates(doc), "state")}
        {asl ? " (ASL)" : ""} · {plural(allProblems.filter((p) => p.severity === "error").length, "problem")}
        {ed.lastLabel && <> · last edit: {ed.lastLabel}</>}
      </footer>
      {dialog === "versions" && ed.name && <VersionsDialog name={ed.name} current={doc} onClose={() => setDialog(null)} />}
      {dialog === "run" && ed.name && <RunDialog name={ed.name} onClose={() => setDialog(null)} />}
      {dialog === "delete" && ed.name && <DeleteDialog name={ed.name} onClose={() => setDialog(null)} />}
    </section>
  );
}
