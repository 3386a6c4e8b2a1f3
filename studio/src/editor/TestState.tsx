/** "Test this state": run one state against an input (typed, or the input it had in the
 * workflow's last execution) and show its output, the variables it assigns and where it goes. */
import { useEffect, useState } from "react";
import { Link } from "../App";
import { api, enc, type Page } from "../api/client";
import { workflows, type Execution } from "../api/workflows";
import { ActionResult, Dialog, JsonField, JsonView, parseJsonField, useAction } from "../components/common";
import { sideEffects, testOutcome, testWorkflow, type TestOutcome } from "../dsl/testState";
import type { State } from "../dsl/types";
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
      const scratch = `studio-test-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      await workflows.create(scratch, test.workflow);
      try {
        const env = await api.post<Execution>(`/api/v1/workflows/${enc(scratch)}/executions`, { input: data, mode: "sync" });
        let final = env;
        for (let i = 0; final.status === "RUNNING" && i < 600; i++) {
          await new Promise((r) => setTimeout(r, 100));
          final = await api.get<Execution>(`/api/v1/executions/${enc(env.execution_id)}`);
        }
        setOutcome({ ...testOutcome(final, test), execution: env.execution_id });
      } finally {
        await workflows.remove(scratch).catch(() => undefined);
      }
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
