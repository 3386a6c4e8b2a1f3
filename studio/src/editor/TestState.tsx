/** "Test this state": run one state against an input (typed, or the input it had in the
 * workflow's last execution) and show its output, the variables it assigns and where it goes. */
import { useEffect, useState } from "react";
import { Link } from "../App";
import { api, enc, type Page } from "../api/client";
import { workflows, type Execution } from "../api/workflows";
import { ActionResult, Dialog, JsonField, JsonView, parseJsonField, useAction } from "../components/common";
import { pathTaken, selectionWorkflow, sideEffects, testOutcome, testWorkflow, type TestOutcome, type TestRun } from "../dsl/testState";
import type { Scope, State } from "../dsl/types";
import type { HistoryEvent } from "../pages/stateRuns";

/** The input `state` had when it last ran in the workflow's most recent execution that reached it. */
async function recordedInput(workflow: string, state: string): Promise<unknown | undefined> {
  const page = await api.get<Page<Execution>>("/api/v1/executions", { workflow, limit: 5 });
  for (const ex of page.items ?? []) {
    const history = await api.get<Page<HistoryEvent>>(`/api/v1/executions/${enc(ex.execution_id)}/history`, { limit: 10000 });
    const entered = (history.items ?? []).filter((e) => e.type === "StateEntered" && e.state === state);
    const last = entered[entered.length - 1];
    if (last && last.detail && typeof last.detail === "object" && "input" in last.detail) return (last.detail as { input: unknown }).input;
  }
  return undefined;
}

/** Create `workflow` as a temporary workflow, run it on `data`, remove it; the finished execution. */
async function runScratch(test: TestRun, data: unknown): Promise<Execution> {
  const scratch = `studio-test-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await workflows.create(scratch, test.workflow);
  try {
    const env = await api.post<Execution>(`/api/v1/workflows/${enc(scratch)}/executions`, { input: data, mode: "sync" });
    let final = env;
    for (let i = 0; final.status === "RUNNING" && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      final = await api.get<Execution>(`/api/v1/executions/${enc(env.execution_id)}`);
    }
    return { ...final, execution_id: env.execution_id };
  } finally {
    await workflows.remove(scratch).catch(() => undefined);
  }
}

export function TestStateDialog({ workflow, name, state, onClose }: { workflow: string | null; name: string; state: State; onClose: () => void }) {
  const [input, setInput] = useState("{}");
  const [from, setFrom] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<(TestOutcome & { execution: string }) | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const action = useAction();
  const tasks = sideEffects(state);
  useEffect(() => {
    if (!workflow) return;
    recordedInput(workflow, name).then(
      (v) => {
        if (v === undefined) return;
        setInput((cur) => (cur === "{}" ? JSON.stringify(v, null, 2) : cur));
        setFrom("the input this state had in the last execution");
      },
      () => undefined,
    );
  }, [workflow, name]);
  const run = () =>
    action.run(async () => {
      setOutcome(null);
      const data = parseJsonField("input", input) ?? null;
      const test = testWorkflow(name, state);
      const final = await runScratch(test, data);
      setOutcome({ ...testOutcome(final, test), execution: final.execution_id });
    });
  return (
    <Dialog title={`Test ${name}`} onClose={onClose}>
      <p className="muted">
        Runs this state once on the server's engine, as a temporary workflow (removed afterwards; its execution stays in the list),
        with the expressions evaluated as in a real run.
      </p>
      <JsonField id="test-input" label="Input (JSON)" value={input} onChange={setInput} rows={6} />
      {from && <p className="muted">Pre-filled with {from}.</p>}
      {tasks.length > 0 && (
        <label className="confirm">
          <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} />{" "}
          This runs {tasks.length === 1 ? "a task" : `${tasks.length} tasks`} for real (its action or function is called, with any side effects). Run it.
        </label>
      )}
      <ActionResult action={action} />
      {outcome && (
        <section aria-label="Test result" data-testid="test-result">
          <h3>
            {outcome.status}
            {outcome.next && outcome.next !== "(end)" ? ` → ${outcome.next}` : outcome.next === "(end)" ? " (ends the workflow)" : ""}
          </h3>
          {outcome.status === "SUCCEEDED" ? (
            <>
              <h4>Output</h4>
              <JsonView value={outcome.output} label="Test output" />
              {outcome.variables !== undefined && (
                <>
                  <h4>Variables it assigns</h4>
                  <JsonView value={outcome.variables} label="Test variables" />
                </>
              )}
            </>
          ) : (
            <>
              <h4>Error</h4>
              <JsonView value={outcome.error} label="Test error" />
            </>
          )}
          <p className="muted">
            <Link to={`/executions/${encodeURIComponent(outcome.execution)}`}>The test execution</Link>
          </p>
        </section>
      )}
      <div className="dialog-actions">
        <button type="button" className="primary" disabled={action.busy || (tasks.length > 0 && !confirmed)} onClick={run} data-testid="test-run">
          Run the state
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}

/** "Test N selected states": run a selection of one scope's states together, from its first
 * state in flow order to where it leaves the selection, and show the output, the variables and
 * the path taken. */
export function TestSelectionDialog({ workflow, scope, names, onClose }: { workflow: string | null; scope: Scope; names: string[]; onClose: () => void }) {
  const [input, setInput] = useState("{}");
  const [from, setFrom] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<(TestOutcome & { execution: string; path: string[] }) | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const [start, setStart] = useState<string | undefined>(undefined);
  const action = useAction();
  const plan = selectionWorkflow(scope, names, start);
  const entry = plan.workflow.entry as string;
  const choices = plan.starts.length > 1 ? plan.starts : plan.starts.length === 0 ? plan.names : [];
  const tasks = plan.names.flatMap((n) => sideEffects(scope.states![n]).map((t) => (t === "(this state)" ? n : `${n} › ${t}`)));
  useEffect(() => {
    if (!workflow) return;
    let live = true;
    recordedInput(workflow, entry).then(
      (v) => {
        if (!live || v === undefined) return;
        setInput((cur) => (cur === "{}" ? JSON.stringify(v, null, 2) : cur));
        setFrom(`the input ${entry} had in the last execution`);
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [workflow, entry]);
  const run = () =>
    action.run(async () => {
      setOutcome(null);
      const data = parseJsonField("input", input) ?? null;
      const test = selectionWorkflow(scope, names, entry);
      const final = await runScratch(test, data);
      const history = await api
        .get<Page<HistoryEvent>>(`/api/v1/executions/${enc(final.execution_id)}/history`, { limit: 10000 })
        .catch(() => ({ items: [] as HistoryEvent[] }) as Page<HistoryEvent>);
      setOutcome({ ...testOutcome(final, test), execution: final.execution_id, path: pathTaken(history.items ?? [], test) });
    });
  return (
    <Dialog title={`Test ${plan.names.length} selected states`} onClose={onClose}>
      <p className="muted">
        Runs {plan.names.join(", ")} together on the server's engine, as a temporary workflow (removed afterwards; its execution stays in the list):
        the transitions between them are kept, and any way out of the selection ends the run there.
      </p>
      {choices.length > 0 ? (
        <p className="notice" data-testid="test-start-note">
          {plan.starts.length > 1 ? `${plan.starts.length} selected states have no selected state leading to them` : "The selected states lead to each other in a loop"}; it starts at
          the first in flow order unless you choose.{" "}
          <label>
            Start at{" "}
            <select value={entry} onChange={(e) => setStart(e.target.value)} aria-label="Start at">
              {choices.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
        </p>
      ) : (
        <p className="muted">Starts at {entry}.</p>
      )}
      <JsonField id="test-input" label="Input (JSON)" value={input} onChange={setInput} rows={6} />
      {from && <p className="muted">Pre-filled with {from}.</p>}
      {tasks.length > 0 && (
        <label className="confirm">
          <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} />{" "}
          This runs {tasks.length === 1 ? "a task" : `${tasks.length} tasks`} ({tasks.join(", ")}) for real (its action or function is called, with any side effects). Run it.
        </label>
      )}
      <ActionResult action={action} />
      {outcome && (
        <section aria-label="Test result" data-testid="test-result">
          <h3>
            {outcome.status}
            {outcome.next && outcome.next !== "(end)" ? ` → ${outcome.next}` : outcome.next === "(end)" ? " (ends the workflow)" : ""}
          </h3>
          <h4>Path taken</h4>
          <p data-testid="test-path">{outcome.path.length ? outcome.path.join(" → ") : "(no state entered)"}</p>
          {outcome.status === "SUCCEEDED" ? (
            <>
              <h4>Output</h4>
              <JsonView value={outcome.output} label="Test output" />
              {outcome.variables !== undefined && (
                <>
                  <h4>Variables assigned</h4>
                  <JsonView value={outcome.variables} label="Test variables" />
                </>
              )}
            </>
          ) : (
            <>
              <h4>Error</h4>
              <JsonView value={outcome.error} label="Test error" />
            </>
          )}
          <p className="muted">
            <Link to={`/executions/${encodeURIComponent(outcome.execution)}`}>The test execution</Link>
          </p>
        </section>
      )}
      <div className="dialog-actions">
        <button type="button" className="primary" disabled={action.busy || (tasks.length > 0 && !confirmed)} onClick={run} data-testid="test-run">
          Run the states
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
