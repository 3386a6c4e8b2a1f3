/** AI tasks (issue 18): submit a task for an intent, list the tenant's tasks, read a task's
 * envelope (the engine the router chose and why, usage) and follow its tokens live over SSE
 * (fetch with the key in the Authorization header, never in the URL); cancel a running one. */
import { useEffect, useState } from "react";
import { api, enc } from "../api/client";
import { atLeast, useSession } from "../api/session";
import {
  emptyStream,
  followTask,
  foldStream,
  noPolicy,
  POLL_MS,
  resultText,
  shouldPoll,
  submitBody,
  TASK_FINAL,
  type StreamState,
  type TaskEnvelope,
} from "../api/tasks";
import { ActionResult, DataTable, ErrorBox, JsonField, JsonView, useAction, usePagedList } from "../components/common";

export function statusClass(status: string): string {
  return { OK: "succeeded", RUNNING: "running", ERROR: "failed", TIMEOUT: "timed_out", CANCELED: "aborted" }[status] ?? "aborted";
}

function NoPolicy({ error }: { error: unknown }) {
  return (
    <div className="notice warn" role="status" data-testid="no-policy">
      <b>No AI policy is loaded on this server</b>, so tasks cannot run yet. {(error as Error).message}. An admin puts the policy files in place
      and runs <code>aio router reload</code>.
    </div>
  );
}

function TaskDetail({ id, onChange }: { id: string; onChange: () => void }) {
  const who = useSession((s) => s.who);
  const [env, setEnv] = useState<TaskEnvelope | null>(null);
  const [stream, setStream] = useState<StreamState>(emptyStream);
  const [live, setLive] = useState(false);
  const [resuming, setResuming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const act = useAction();
  useEffect(() => {
    let stop = false;
    const ctrl = new AbortController();
    setEnv(null);
    setStream(emptyStream);
    setError(null);
    (async () => {
      try {
        const first = await api.get<TaskEnvelope>(`/api/v1/tasks/${enc(id)}`);
        if (stop) return;
        setEnv(first);
        if (TASK_FINAL.has(first.status)) return;
        setLive(true);
        let state = emptyStream;
        // a dropped connection is resumed with Last-Event-ID: the tokens go on where they stopped
        await followTask(
          id,
          (ev) => {
            setResuming(false);
            state = foldStream(state, ev);
            setStream(state);
            if (state.envelope) setEnv(state.envelope);
          },
          ctrl.signal,
          { onRetry: () => !stop && setResuming(true) },
        );
        if (!stop) {
          setEnv(await api.get<TaskEnvelope>(`/api/v1/tasks/${enc(id)}`));
          onChange();
        }
      } catch (e) {
        if (!stop) setError(e);
      } finally {
        if (!stop) {
          setLive(false);
          setResuming(false);
        }
      }
    })();
    return () => {
      stop = true;
      ctrl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);
  const running = env?.status === "RUNNING";
  const text = stream.text || (env && !running ? resultText(env.result) : "");
  return (
    <div className="detail" aria-label="Task details">
      <h2>
        <code>{id}</code>
      </h2>
      <ErrorBox error={error} />
      {env && (
        <>
          <p>
            Intent <b>{env.intent}</b> ·{" "}
            <span className={`status status-${statusClass(env.status)}`} data-testid="task-status">
              {env.status}
            </span>
            {live && (
              <span className="tag" data-testid="task-live">
                live
              </span>
            )}
            {resuming && (
              <span className="tag" data-testid="task-resuming">
                reconnecting…
              </span>
            )}
          </p>
          <div className="button-row">
            <button
              type="button"
              disabled={!atLeast(who, "operator") || !running || act.busy}
              onClick={() =>
                act.run(async () => {
                  const out = await api.post<TaskEnvelope>(`/api/v1/tasks/${enc(id)}/cancel`);
                  setEnv(out);
                  onChange();
                  return `Task ${out.status === "CANCELED" ? "canceled" : `already ${out.status}`}.`;
                })
              }
            >
              Cancel task
            </button>
          </div>
          <ActionResult action={act} />
          <h3>Output{running ? " (streaming)" : ""}</h3>
          {stream.note && <p className="muted">{stream.note}</p>}
          <pre className="json wrap task-output" aria-label="Task output" aria-live="polite" data-testid="task-output">
            {text || (running ? "waiting for the first token…" : "—")}
          </pre>
          {stream.tokens > 0 && <p className="muted">{stream.tokens} tokens streamed</p>}
          <h3>Engine</h3>
          <dl className="props" aria-label="Engine">
            {(["route", "provider", "model", "tier", "chosen_by", "reason"] as const).map((k) => (
              <div key={k}>
                <dt>{k.replace("_", " ")}</dt>
                <dd data-testid={`engine-${k}`}>{env.engine?.[k] ?? "—"}</dd>
              </div>
            ))}
          </dl>
          <h3>Usage</h3>
          <dl className="props" aria-label="Usage">
            <div>
              <dt>latency</dt>
              <dd>{env.usage?.latency_ms !== undefined ? `${Math.round(env.usage.latency_ms)} ms` : "—"}</dd>
            </div>
            <div>
              <dt>tokens in / out</dt>
              <dd data-testid="usage-tokens">
                {env.usage?.tokens_in ?? "—"} / {env.usage?.tokens_out ?? "—"}
              </dd>
            </div>
            <div>
              <dt>cost</dt>
              <dd>{env.usage?.cost_usd !== undefined ? `$${env.usage.cost_usd.toFixed(6)}` : "—"}</dd>
            </div>
          </dl>
          {env.error !== null && env.error !== undefined && (
            <>
              <h3>Error</h3>
              <JsonView value={env.error} label="Task error" />
            </>
          )}
          <details>
            <summary>Envelope</summary>
            <JsonView value={env} label="Task envelope" />
          </details>
        </>
      )}
    </div>
  );
}

/** Whether the page is visible (not a background tab or a minimised window). */
function useVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState === "visible");
  useEffect(() => {
    const on = () => setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", on);
    return () => document.removeEventListener("visibilitychange", on);
  }, []);
  return visible;
}

export function TasksPage() {
  const who = useSession((s) => s.who);
  const list = usePagedList<TaskEnvelope>("/api/v1/tasks");
  const [sel, setSel] = useState<string | null>(null);
  const [intent, setIntent] = useState("summarize");
  const [params, setParams] = useState('{"text": ""}');
  const [privacy, setPrivacy] = useState("");
  const [budget, setBudget] = useState("");
  const [policyError, setPolicyError] = useState<unknown>(null);
  const act = useAction();
  const visible = useVisible();
  const poll = shouldPoll(list.items, visible);
  const { refresh } = list;
  useEffect(() => {
    // while a task runs and the page is visible, the list follows the status changes
    if (!poll) return;
    const t = setInterval(() => void refresh((r) => r.task_id), POLL_MS);
    return () => clearInterval(t);
  }, [poll, refresh]);
  const submit = () =>
    act.run(async () => {
      try {
        const out = await api.post<TaskEnvelope>("/api/v1/tasks", submitBody(intent, params, { privacy, budget }));
        setPolicyError(null);
        setSel(out.task_id);
        list.reload();
        return `Submitted ${out.task_id}.`;
      } catch (e) {
        if (noPolicy(e)) {
          setPolicyError(e);
          return;
        }
        throw e;
      }
    });
  return (
    <section className="page">
      <header className="page-head">
        <h1>Tasks</h1>
      </header>
      <p className="muted">Send an intent; the AI router picks a local or API model under the policy and shows why.</p>
      {policyError !== null && <NoPolicy error={policyError} />}
      {atLeast(who, "operator") && (
        <form
          className="card"
          aria-label="Submit a task"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <div className="field">
            <label htmlFor="task-intent">Intent</label>
            <input id="task-intent" value={intent} onChange={(e) => setIntent(e.target.value)} placeholder="summarize" />
          </div>
          <JsonField id="task-params" label="Params (JSON)" value={params} onChange={setParams} rows={4} />
          <div className="field">
            <label htmlFor="task-privacy">Privacy (only stricter than the intent's)</label>
            <select id="task-privacy" value={privacy} onChange={(e) => setPrivacy(e.target.value)}>
              <option value="">the intent's</option>
              <option value="local-only">local-only</option>
              <option value="hybrid">hybrid</option>
              <option value="allow-api">allow-api</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="task-budget">Budget (USD, optional)</label>
            <input id="task-budget" inputMode="decimal" value={budget} onChange={(e) => setBudget(e.target.value)} placeholder="0.02" />
          </div>
          <button type="submit" className="primary" disabled={act.busy}>
            Submit task
          </button>
          <ActionResult action={act} />
        </form>
      )}
      <ErrorBox error={list.error} />
      {poll && (
        <p className="muted" data-testid="tasks-polling">
          Tasks are running: this list refreshes every {POLL_MS / 1000} s.
        </p>
      )}
      {!list.error && (
        <div className="master-detail">
          <DataTable
            caption="Tasks"
            rows={list.items}
            rowKey={(r) => r.task_id}
            selectedKey={sel}
            onSelect={(r) => setSel(r.task_id)}
            loading={list.loading}
            more={list.more}
            columns={[
              { label: "Task", value: (r) => <code>{r.task_id}</code>, text: (r) => r.task_id },
              { label: "Intent", value: (r) => r.intent },
              { label: "Status", value: (r) => <span className={`status status-${statusClass(r.status)}`}>{r.status}</span>, text: (r) => r.status },
              { label: "Route", value: (r) => r.engine?.route ?? "—" },
              { label: "Model", value: (r) => (r.engine ? `${r.engine.provider ?? "?"}/${r.engine.model ?? "?"}` : "—") },
              { label: "Cost", value: (r) => (r.usage?.cost_usd !== undefined ? `$${r.usage.cost_usd.toFixed(6)}` : "—") },
            ]}
            empty={<p>No tasks yet. Submit one above, or with <code>aio task submit INTENT --params …</code>.</p>}
          />
          {sel && <TaskDetail key={sel} id={sel} onChange={list.reload} />}
        </div>
      )}
    </section>
  );
}
