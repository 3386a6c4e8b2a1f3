/** The inspector: the workflow's own fields, or the selected state's fields by type. */
import { useState } from "react";
import { getScope, parseNodeId, scopePointer, statePointer } from "../dsl/scope";
import { isObject, STATE_TYPES, TERMINAL_TYPES, type Catcher, type Retrier, type Route, type State, type StateType, type Workflow } from "../dsl/types";
import type { Problem } from "../dsl/validate";
import { operationFor, resolveSchema, useCatalog, type JsonSchema } from "./catalog";
import { FieldProblems, JsonInput, NumberField, Section, SelectField, TextField } from "./fields";
import { useEditor } from "./store";
import { TestSelectionDialog, TestStateDialog } from "./TestState";
import { BUILDER_LIMIT, buildCondition, conditionMode, OPERATORS, parseCondition } from "./condition";
import * as edits from "../dsl/edits";

export function Inspector({ readOnly }: { readOnly: boolean }) {
  const { snapshot, selected, problems, serverProblems } = useEditor();
  const all = [...problems, ...serverProblems];
  const doc = snapshot.doc;
  if (selected.length > 1) return <SelectionInspector selected={selected} doc={doc} readOnly={readOnly} />;
  const id = selected[0];
  const { path, name } = id ? parseNodeId(id) : { path: [], name: "" };
  const state = id ? getScope(doc, path)?.states?.[name] : undefined;
  return (
    <aside className="inspector" aria-label="Inspector">
      {state ? <StateInspector key={id} id={id} state={state} doc={doc} problems={all} readOnly={readOnly} /> : <WorkflowInspector doc={doc} problems={all} readOnly={readOnly} />}
    </aside>
  );
}

/** Several states selected: what can be done with them together, testing included. */
function SelectionInspector({ selected, doc, readOnly }: { selected: string[]; doc: Workflow; readOnly: boolean }) {
  const workflow = useEditor((s) => s.name);
  const [testing, setTesting] = useState(false);
  const parsed = selected.map(parseNodeId);
  const path = parsed[0].path;
  const sameScope = parsed.every((p) => JSON.stringify(p.path) === JSON.stringify(path));
  const scope = sameScope ? getScope(doc, path) : undefined;
  const names = scope ? parsed.map((p) => p.name).filter((n) => scope.states?.[n]) : [];
  return (
    <aside className="inspector" aria-label="Inspector">
      <p className="muted">{selected.length} states selected. Delete, copy or move them together.</p>
      <button
        type="button"
        onClick={() => setTesting(true)}
        disabled={readOnly || !scope || names.length < 2}
        data-testid="test-selection"
        title={scope ? "Run the selected states together once against an input" : "Select states of one scope (the top level, or one branch or processor) to test them together"}
      >
        Test {selected.length} selected states
      </button>
      {!sameScope && <p className="muted">They are in different scopes: select states of one scope to test them together.</p>}
      {testing && scope && <TestSelectionDialog workflow={workflow} scope={scope} names={names} onClose={() => setTesting(false)} />}
    </aside>
  );
}

function WorkflowInspector({ doc, problems, readOnly }: { doc: Workflow; problems: Problem[]; readOnly: boolean }) {
  const apply = useEditor((s) => s.apply);
  const names = Object.keys(doc.states ?? {});
  return (
    <>
      <h2>Workflow</h2>
      <SelectField
        label="Entry state"
        value={doc.entry ?? ""}
        disabled={readOnly}
        options={[{ value: "", label: "(choose)" }, ...names.map((n) => ({ value: n, label: n }))]}
        onChange={(v) => apply("set entry", (d) => edits.setWorkflowField(d, "entry", v))}
        problems={problems}
        pointer="/entry"
      />
      <NumberField label="Timeout (seconds)" value={doc.timeout_seconds} readOnly={readOnly} min={1} onCommit={(v) => apply("set timeout", (d) => edits.setWorkflowField(d, "timeout_seconds", v))} problems={problems} pointer="/timeout_seconds" />
      <TextField label="Comment" value={doc.comment} readOnly={readOnly} onCommit={(v) => apply("set comment", (d) => edits.setWorkflowField(d, "comment", v || undefined))} />
      <p className="muted">Select a state to edit it. Drag states from the palette onto the canvas, connect them by dragging from a state's bottom handle to another state.</p>
      <FieldProblems problems={problems} pointer="/states" />
    </>
  );
}

function StateInspector({ id, state, doc, problems, readOnly }: { id: string; state: State; doc: Workflow; problems: Problem[]; readOnly: boolean }) {
  const { setField, rename, replaceType } = useEditor();
  const { path, name } = parseNodeId(id);
  const scope = getScope(doc, path);
  const names = Object.keys(scope?.states ?? {}).filter((n) => n !== name);
  const ptr = statePointer(id);
  const set = (key: string, value: unknown) => setField(id, key, value);
  const targetOptions = [{ value: "", label: "(choose a state)" }, ...names.map((n) => ({ value: n, label: n }))];
  const mine = problems.filter((p) => p.pointer === ptr || p.pointer.startsWith(ptr + "/"));
  const workflow = useEditor((s) => s.name);
  const [testing, setTesting] = useState(false);
  return (
    <>
      <h2>
        {name} <span className="tag">{state.type}</span>
      </h2>
      <button type="button" onClick={() => setTesting(true)} disabled={readOnly} data-testid="test-state" title="Run this state once against an input">
        Test this state
      </button>
      {testing && <TestStateDialog workflow={workflow} name={name} state={state} onClose={() => setTesting(false)} />}
      {mine.length > 0 && (
        <ul className="problem-list" aria-label="Problems of this state">
          {mine.map((p, i) => (
            <li key={i} className={p.severity}>
              <code>{p.pointer.slice(ptr.length) || "/"}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
      <TextField
        label="Name"
        value={name}
        readOnly={readOnly}
        onCommit={(v) => rename(id, v)}
        check={(v) => edits.stateNameProblem(v) ?? (names.includes(v) ? `a state named "${v}" already exists here` : null)}
        problems={problems}
        pointer={ptr}
        testId="inspector-name"
      />
      <SelectField label="Type" value={state.type} disabled={readOnly} options={STATE_TYPES.map((t) => ({ value: t, label: t }))} onChange={(v) => replaceType(id, v as StateType)} />
      <TextField label="Comment" value={state.comment} readOnly={readOnly} onCommit={(v) => set("comment", v || undefined)} />
      {!TERMINAL_TYPES.includes(state.type) && state.type !== "router" && (
        <SelectField
          label="Then"
          testId="inspector-next"
          value={state.end ? "(end)" : (state.next ?? "")}
          disabled={readOnly}
          options={[...targetOptions, { value: "(end)", label: "End the workflow" }]}
          onChange={(v) => (v === "(end)" ? set("end", true) : set("next", v || undefined))}
          problems={problems}
          pointer={`${ptr}/next`}
        />
      )}
      {state.type === "task" && <TaskFields id={id} state={state} problems={problems} readOnly={readOnly} />}
      {state.type === "router" && <RouterFields id={id} state={state} targets={targetOptions} problems={problems} readOnly={readOnly} />}
      {state.type === "map" && (
        <Section title="Map">
          <TextField label="Items (expression)" mono value={typeof state.items === "string" ? state.items : JSON.stringify(state.items ?? "")} readOnly={readOnly} onCommit={(v) => set("items", v || undefined)} problems={problems} pointer={`${ptr}/items`} />
          <NumberField label="Max concurrency (0: no limit)" min={0} value={state.max_concurrency as number | undefined} readOnly={readOnly} onCommit={(v) => set("max_concurrency", v)} problems={problems} pointer={`${ptr}/max_concurrency`} />
          <NumberField label="Tolerated failures (count)" min={0} value={state.tolerated_failure_count as number | undefined} readOnly={readOnly} onCommit={(v) => set("tolerated_failure_count", v)} problems={problems} pointer={`${ptr}/tolerated_failure_count`} />
          <NumberField label="Tolerated failures (%)" min={0} value={state.tolerated_failure_percentage as number | undefined} readOnly={readOnly} onCommit={(v) => set("tolerated_failure_percentage", v)} problems={problems} pointer={`${ptr}/tolerated_failure_percentage`} />
          <ScopeEntry id={id} sub={[...path, name]} doc={doc} problems={problems} readOnly={readOnly} label="Processor entry" />
        </Section>
      )}
      {state.type === "parallel" && <ParallelFields id={id} state={state} doc={doc} problems={problems} readOnly={readOnly} />}
      {state.type === "wait" && <WaitFields id={id} state={state} problems={problems} readOnly={readOnly} />}
      {state.type === "set" && <JsonInput label="Value (becomes the output)" value={state.value} readOnly={readOnly} onCommit={(v) => set("value", v)} problems={problems} pointer={`${ptr}/value`} />}
      {state.type === "fail" && (
        <Section title="Failure">
          <TextField label="Error" value={typeof state.error === "string" ? state.error : ""} readOnly={readOnly} onCommit={(v) => set("error", v)} problems={problems} pointer={`${ptr}/error`} />
          <TextField label="Cause" value={typeof state.cause === "string" ? state.cause : ""} readOnly={readOnly} onCommit={(v) => set("cause", v || undefined)} problems={problems} pointer={`${ptr}/cause`} />
        </Section>
      )}
      <Section title="Data">
        <JsonInput label="Output expression" value={isObject(state.output) ? state.output.expression : undefined} readOnly={readOnly} onCommit={(v) => set("output", v === undefined ? undefined : { expression: v })} problems={problems} pointer={`${ptr}/output`} rows={3} />
        <JsonInput label="Assign variables" value={state.assign} readOnly={readOnly} onCommit={(v) => set("assign", v)} problems={problems} pointer={`${ptr}/assign`} rows={3} />
        <NumberField label="Timeout (seconds)" min={0} value={state.timeout_seconds as number | undefined} readOnly={readOnly} onCommit={(v) => set("timeout_seconds", v)} problems={problems} pointer={`${ptr}/timeout_seconds`} />
      </Section>
      {(state.type === "task" || state.type === "parallel" || state.type === "map") && (
        <>
          <RetryEditor id={id} retry={state.retry ?? []} problems={problems} readOnly={readOnly} />
          <CatchEditor id={id} catchers={state.catch ?? []} targets={targetOptions} problems={problems} readOnly={readOnly} />
        </>
      )}
    </>
  );
}

function TaskFields({ id, state, problems, readOnly }: { id: string; state: State; problems: Problem[]; readOnly: boolean }) {
  const catalog = useCatalog();
  const setField = useEditor((s) => s.setField);
  const ptr = statePointer(id);
  const op = operationFor(catalog, state.action, state.parameters);
  const params: Record<string, unknown> = isObject(state.parameters) ? state.parameters : {};
  const schema = op?.parameters;
  const listId = `actions-${id.replace(/[^A-Za-z0-9]/g, "_")}`;
  const kind = catalog.kinds.find((k) => k.kind === state.action);
  return (
    <Section title="Task">
      <TextField label="Action" mono list={listId} value={state.action} readOnly={readOnly} onCommit={(v) => setField(id, "action", v)} problems={problems} pointer={`${ptr}/action`} placeholder="http, transform, a function or action TRN" testId="inspector-action" />
      <datalist id={listId}>
        {catalog.kinds.map((k) => (
          <option key={k.kind} value={k.kind}>
            {k.title ?? k.kind}
          </option>
        ))}
        {catalog.actions.map((a) => (
          <option key={"a" + a.name} value={a.trn ?? a.name}>
            action {a.name}
          </option>
        ))}
        {catalog.functions.map((f) => (
          <option key={"f" + f.name} value={f.trn ?? f.name}>
            function {f.name}
          </option>
        ))}
      </datalist>
      {kind && (kind.operations?.length ?? 0) > 1 && (
        <SelectField
          label="Operation"
          value={(params.operation as string) ?? kind.default_operation ?? ""}
          disabled={readOnly}
          options={kind.operations!.map((o) => ({ value: o.name, label: o.name }))}
          onChange={(v) => setField(id, "parameters", { ...params, operation: v })}
        />
      )}
      {schema?.properties && (
        <div className="schema-form" aria-label="Parameters">
          {Object.entries(schema.properties)
            .filter(([k]) => k !== "operation")
            .map(([key, raw]) => {
              const s: JsonSchema = resolveSchema(schema, raw);
              const label = `${s.title ?? key}${schema.required?.includes(key) ? " *" : ""}`;
              const value = params[key];
              const commit = (v: unknown) => {
                const next = { ...params };
                if (v === undefined || v === "") delete next[key];
                else next[key] = v;
                setField(id, "parameters", next);
              };
              if (s.type === "boolean")
                return (
                  <SelectField key={key} label={label} value={value === undefined ? "" : String(value)} disabled={readOnly} options={[{ value: "", label: "(default)" }, { value: "true", label: "true" }, { value: "false", label: "false" }]} onChange={(v) => commit(v === "" ? undefined : v === "true")} />
                );
              if (s.enum)
                return <SelectField key={key} label={label} value={String(value ?? "")} disabled={readOnly} options={[{ value: "", label: "(default)" }, ...s.enum.map((e) => ({ value: String(e), label: String(e) }))]} onChange={(v) => commit(v || undefined)} />;
              if (s.type === "string" || s.type === "number" || s.type === "integer")
                return (
                  <TextField
                    key={key}
                    label={label}
                    mono
                    value={value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value)}
                    readOnly={readOnly}
                    placeholder={s.description}
                    onCommit={(v) => commit(s.type !== "string" && v !== "" && !v.startsWith("{%") && !Number.isNaN(Number(v)) ? Number(v) : v)}
                    problems={problems}
                    pointer={`${ptr}/parameters/${key}`}
                  />
                );
              return <JsonInput key={key} label={label} value={value} readOnly={readOnly} onCommit={commit} problems={problems} pointer={`${ptr}/parameters/${key}`} rows={2} />;
            })}
        </div>
      )}
      <JsonInput label="Parameters (JSON)" value={state.parameters} readOnly={readOnly} onCommit={(v) => setField(id, "parameters", v)} problems={problems} pointer={`${ptr}/parameters`} />
      <SelectField label="Mode" value={(state.mode as string) ?? "sync"} disabled={readOnly} options={[{ value: "sync", label: "sync" }, { value: "callback", label: "callback (wait for a token)" }]} onChange={(v) => setField(id, "mode", v === "sync" ? undefined : v)} />
      {state.mode === "callback" && <NumberField label="Heartbeat (seconds)" value={state.heartbeat_seconds as number | undefined} readOnly={readOnly} onCommit={(v) => setField(id, "heartbeat_seconds", v)} />}
    </Section>
  );
}


function ConditionEditor({ value, onCommit, readOnly, problems, pointer, index }: { value: unknown; onCommit: (v: string) => void; readOnly: boolean; problems: Problem[]; pointer: string; index: number }) {
  const parsed = parseCondition(value);
  const mode = conditionMode(value);
  const [raw, setRaw] = useState(mode === "expression");
  const [why, setWhy] = useState<string | null>(null);
  const [draft, setDraft] = useState({ left: "", op: ">", right: "" });
  if (raw)
    return (
      <div>
        <TextField label={`Condition ${index + 1} (expression)`} mono value={typeof value === "string" ? value : JSON.stringify(value)} readOnly={readOnly} onCommit={onCommit} problems={problems} pointer={pointer} testId={`route-${index}-condition`} />
        <button
          type="button"
          className="link"
          onClick={() => {
            if (conditionMode(value) === "expression") setWhy(BUILDER_LIMIT);
            else (setRaw(false), setWhy(null));
          }}
          disabled={readOnly}
        >
          Use the condition builder
        </button>
        {why && (
          <p className="field-hint" role="status" data-testid={`route-${index}-builder-why`}>
            {why}
          </p>
        )}
      </div>
    );
  const fields = parsed ?? draft;
  const change = (next: { left: string; op: string; right: string }) => {
    if (parsed) return onCommit(buildCondition(next.left, next.op, next.right));
    setDraft(next);
    if (next.left.trim() && next.right.trim()) onCommit(buildCondition(next.left, next.op, next.right));
  };
  return (
    <div>
      <div className="condition-builder" role="group" aria-label={`Condition ${index + 1}`}>
        <TextField label="Value" mono value={fields.left} placeholder="input.amount" readOnly={readOnly} onCommit={(v) => change({ ...fields, left: v })} />
        <SelectField label="Operator" value={fields.op} disabled={readOnly} options={OPERATORS.map((o) => ({ value: o, label: o }))} onChange={(v) => change({ ...fields, op: v })} />
        <TextField label="Compared to" mono value={fields.right} placeholder="100" readOnly={readOnly} onCommit={(v) => change({ ...fields, right: v })} />
      </div>
      {!parsed && <p className="muted">{typeof value === "string" && value ? `Now ${value}: always taken` : "No condition yet"} until both values are filled in.</p>}
      <FieldProblems problems={problems} pointer={pointer} />
      <button type="button" className="link" onClick={() => setRaw(true)}>
        Edit as raw expression
      </button>
    </div>
  );
}

function RouterFields({ id, state, targets, problems, readOnly }: { id: string; state: State; targets: { value: string; label: string }[]; problems: Problem[]; readOnly: boolean }) {
  const setField = useEditor((s) => s.setField);
  const ptr = statePointer(id);
  const routes: Route[] = state.routes ?? [];
  const setRoutes = (r: Route[]) => setField(id, "routes", r);
  return (
    <Section
      title="Routes"
      actions={
        <button type="button" disabled={readOnly} onClick={() => setRoutes([...routes, { condition: "{% input.value > 0 %}", next: "" }])}>
          Add route
        </button>
      }
    >
      <FieldProblems problems={problems} pointer={`${ptr}/routes`} />
      {routes.map((r, i) => (
        <div className="row-card" key={i}>
          <ConditionEditor index={i} value={r.condition} readOnly={readOnly} problems={problems} pointer={`${ptr}/routes/${i}/condition`} onCommit={(v) => setRoutes(routes.map((x, j) => (j === i ? { ...x, condition: v } : x)))} />
          <SelectField label={`Route ${i + 1} goes to`} value={r.next ?? ""} disabled={readOnly} options={targets} onChange={(v) => setRoutes(routes.map((x, j) => (j === i ? { ...x, next: v } : x)))} problems={problems} pointer={`${ptr}/routes/${i}/next`} testId={`route-${i}-next`} />
          <button type="button" className="danger link" disabled={readOnly} onClick={() => setRoutes(routes.filter((_, j) => j !== i))}>
            Remove route {i + 1}
          </button>
        </div>
      ))}
      <SelectField label="Default (no route matched)" testId="router-default" value={state.default ?? ""} disabled={readOnly} options={[{ value: "", label: "(none: fail with States.NoChoiceMatched)" }, ...targets.slice(1)]} onChange={(v) => setField(id, "default", v || undefined)} problems={problems} pointer={`${ptr}/default`} />
    </Section>
  );
}

function ScopeEntry({ id, sub, doc, problems, readOnly, label }: { id: string; sub: (string | number)[]; doc: Workflow; problems: Problem[]; readOnly: boolean; label: string }) {
  const apply = useEditor((s) => s.apply);
  const scope = getScope(doc, sub);
  void id;
  if (!scope) return null;
  return (
    <SelectField
      label={label}
      value={scope.entry ?? ""}
      disabled={readOnly}
      options={[{ value: "", label: "(choose)" }, ...Object.keys(scope.states ?? {}).map((n) => ({ value: n, label: n }))]}
      onChange={(v) => apply("set entry", (d) => edits.setScopeField(d, sub, "entry", v))}
      problems={problems}
      pointer={`${scopePointer(sub)}/entry`}
    />
  );
}

function ParallelFields({ id, state, doc, problems, readOnly }: { id: string; state: State; doc: Workflow; problems: Problem[]; readOnly: boolean }) {
  const apply = useEditor((s) => s.apply);
  const { path, name } = parseNodeId(id);
  return (
    <Section
      title="Branches"
      actions={
        <button type="button" disabled={readOnly} onClick={() => apply("add branch", (d) => edits.editBranches(d, id))}>
          Add branch
        </button>
      }
    >
      {(state.branches ?? []).map((_, i) => (
        <div className="row-card" key={i}>
          <ScopeEntry id={id} sub={[...path, name, i]} doc={doc} problems={problems} readOnly={readOnly} label={`Branch ${i + 1} entry`} />
          <button type="button" className="danger link" disabled={readOnly || (state.branches ?? []).length < 2} onClick={() => apply("remove branch", (d) => edits.editBranches(d, id, i))}>
            Remove branch {i + 1}
          </button>
        </div>
      ))}
      <p className="muted">Drop states into a branch's box on the canvas to add them to that branch.</p>
    </Section>
  );
}

function WaitFields({ id, state, problems, readOnly }: { id: string; state: State; problems: Problem[]; readOnly: boolean }) {
  const setField = useEditor((s) => s.setField);
  const apply = useEditor((s) => s.apply);
  const ptr = statePointer(id);
  const mode = state.timestamp !== undefined ? "timestamp" : "seconds";
  return (
    <Section title="Wait">
      <SelectField
        label="Wait for"
        value={mode}
        disabled={readOnly}
        options={[
          { value: "seconds", label: "a number of seconds" },
          { value: "timestamp", label: "a point in time (ISO 8601)" },
        ]}
        onChange={(v) =>
          apply("set wait mode", (d) => {
            let out = edits.setStateField(d, id, v === "seconds" ? "timestamp" : "seconds", undefined);
            out = edits.setStateField(out, id, v, v === "seconds" ? 1 : new Date(Date.now() + 60000).toISOString());
            return out;
          })
        }
      />
      {mode === "seconds" ? (
        <TextField label="Seconds (number or expression)" mono value={state.seconds === undefined ? "" : typeof state.seconds === "string" ? state.seconds : JSON.stringify(state.seconds)} readOnly={readOnly} onCommit={(v) => setField(id, "seconds", v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v)} problems={problems} pointer={`${ptr}/seconds`} />
      ) : (
        <TextField label="Timestamp" mono value={state.timestamp} readOnly={readOnly} onCommit={(v) => setField(id, "timestamp", v)} problems={problems} pointer={`${ptr}/timestamp`} />
      )}
    </Section>
  );
}

function RetryEditor({ id, retry, problems, readOnly }: { id: string; retry: Retrier[]; problems: Problem[]; readOnly: boolean }) {
  const setField = useEditor((s) => s.setField);
  const ptr = statePointer(id);
  const put = (r: Retrier[]) => setField(id, "retry", r.length ? r : undefined);
  const upd = (i: number, patch: Partial<Retrier>) => put(retry.map((r, j) => (j === i ? ({ ...r, ...patch } as Retrier) : r)));
  return (
    <Section
      title="Retry"
      actions={
        <button type="button" disabled={readOnly} onClick={() => put([...retry, { errors: ["States.ALL"], max_attempts: 3, interval_seconds: 1, backoff_rate: 2 }])}>
          Add retrier
        </button>
      }
    >
      {retry.map((r, i) => (
        <div className="row-card" key={i}>
          <TextField label={`Retrier ${i + 1} errors (comma separated)`} value={(r.errors ?? []).join(", ")} readOnly={readOnly} onCommit={(v) => upd(i, { errors: v.split(",").map((s) => s.trim()).filter(Boolean) })} problems={problems} pointer={`${ptr}/retry/${i}/errors`} />
          <div className="grid3">
            <NumberField label="Max attempts" min={0} value={r.max_attempts} readOnly={readOnly} onCommit={(v) => upd(i, { max_attempts: v })} />
            <NumberField label="Interval (s)" min={0} value={r.interval_seconds} readOnly={readOnly} onCommit={(v) => upd(i, { interval_seconds: v })} />
            <NumberField label="Backoff rate" min={1} value={r.backoff_rate} readOnly={readOnly} onCommit={(v) => upd(i, { backoff_rate: v })} />
          </div>
          <button type="button" className="danger link" disabled={readOnly} onClick={() => put(retry.filter((_, j) => j !== i))}>
            Remove retrier {i + 1}
          </button>
        </div>
      ))}
    </Section>
  );
}

function CatchEditor({ id, catchers, targets, problems, readOnly }: { id: string; catchers: Catcher[]; targets: { value: string; label: string }[]; problems: Problem[]; readOnly: boolean }) {
  const setField = useEditor((s) => s.setField);
  const ptr = statePointer(id);
  const put = (c: Catcher[]) => setField(id, "catch", c.length ? c : undefined);
  return (
    <Section
      title="Catch"
      actions={
        <button type="button" disabled={readOnly} onClick={() => put([...catchers, { errors: ["States.ALL"], next: "" }])}>
          Add catcher
        </button>
      }
    >
      {catchers.map((c, i) => (
        <div className="row-card" key={i}>
          <TextField label={`Catcher ${i + 1} errors`} value={(c.errors ?? []).join(", ")} readOnly={readOnly} onCommit={(v) => put(catchers.map((x, j) => (j === i ? { ...x, errors: v.split(",").map((s) => s.trim()).filter(Boolean) } : x)))} problems={problems} pointer={`${ptr}/catch/${i}/errors`} />
          <SelectField label="Then go to" value={c.next ?? ""} disabled={readOnly} options={targets} onChange={(v) => put(catchers.map((x, j) => (j === i ? { ...x, next: v } : x)))} problems={problems} pointer={`${ptr}/catch/${i}/next`} />
          <button type="button" className="danger link" disabled={readOnly} onClick={() => put(catchers.filter((_, j) => j !== i))}>
            Remove catcher {i + 1}
          </button>
        </div>
      ))}
    </Section>
  );
}
