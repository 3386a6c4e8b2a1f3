/** One execution: the workflow graph coloured live from the SSE stream, the history table,
 * a state's input/output/error per attempt, cancel and redrive. */
import { ReactFlowProvider } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";
import { Link } from "../App";
import { api, enc, streamEvents, type Page } from "../api/client";
import { atLeast, useSession } from "../api/session";
import { definitionOf, workflows, type Execution } from "../api/workflows";
import { ActionResult, CopyButton, ErrorBox, JsonView, useAction, when } from "../components/common";
import { drawable } from "../dsl/asl";
import { dslToGraph } from "../dsl/graph";
import type { Workflow } from "../dsl/types";
import { Canvas } from "../editor/Canvas";
import { StatusBadge } from "./Executions";
import { stateRuns, type HistoryEvent } from "./stateRuns";
import { TimelineView } from "./Timeline";
import { frameLabel } from "./timeline";

export type { HistoryEvent };

const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);

/** The colour of each state from the history so far: the last thing that happened to it. */
export function stateStatuses(events: HistoryEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) {
    if (!e.state) continue;
    const t = e.type;
    if (t === "StateEntered" || t === "TaskScheduled" || t === "WaitStarted" || t === "ParallelStarted" || t === "MapStarted") out[e.state] = out[e.state] === "failed" ? "failed" : "running";
    else if (t === "RetryScheduled") out[e.state] = "retrying";
    else if (t === "StateExited") out[e.state] = "succeeded";
    else if (t === "StateFailed" || t === "Caught") out[e.state] = "failed";
  }
  return out;
}

export function ExecutionPage({ id }: { id: string }) {
  const who = useSession((s) => s.who);
  const [execution, setExecution] = useState<Execution | null>(null);
  const [doc, setDoc] = useState<Workflow | null>(null);
  const [events, setEvents] = useState<HistoryEvent[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const [reload, setReload] = useState(0);
  const [view, setView] = useState<"graph" | "timeline">("graph");
  // a run picked on the timeline: the details show that frame's run only
  const [frame, setFrame] = useState<string | null>(null);
  const action = useAction();

  useEffect(() => {
    let stop = false;
    const ctrl = new AbortController();
    const seen = new Set<number>();
    const add = (list: HistoryEvent[]) => {
      const fresh = list.filter((e) => typeof e.seq === "number" && !seen.has(e.seq));
      fresh.forEach((e) => seen.add(e.seq));
      if (fresh.length) setEvents((prev) => [...prev, ...fresh].sort((a, b) => a.seq - b.seq));
    };
    setEvents([]);
    (async () => {
      try {
        const ex = await api.get<Execution>(`/api/v1/executions/${enc(id)}`);
        if (stop) return;
        setExecution(ex);
        workflows.get(ex.workflow, ex.version).then((r) => !stop && setDoc(drawable(definitionOf(r))), setError);
        const page = await api.get<Page<HistoryEvent>>(`/api/v1/executions/${enc(id)}/history`, { limit: 10000 });
        add(page.items ?? []);
        if (FINAL.has(ex.status)) return;
        setLive(true);
        await streamEvents(
          `/api/v1/executions/${enc(id)}/stream`,
          (ev) => {
            const data = ev.data as Partial<HistoryEvent> & { status?: string };
            if (data && typeof data === "object" && typeof data.seq === "number" && typeof data.type === "string") add([data as HistoryEvent]);
            if (data && typeof data === "object" && typeof data.status === "string" && FINAL.has(data.status)) setExecution((x) => (x ? { ...x, ...(data as object) } : x));
          },
          ctrl.signal,
        );
      } catch (e) {
        if (!stop && (e as Error).name !== "AbortError") setError(e);
      } finally {
        if (!stop) {
          setLive(false);
          api.get<Execution>(`/api/v1/executions/${enc(id)}`).then((ex) => !stop && setExecution(ex), () => undefined);
          api.get<Page<HistoryEvent>>(`/api/v1/executions/${enc(id)}/history`, { limit: 10000 }).then((p) => !stop && add(p.items ?? []), () => undefined);
        }
      }
    })();
    return () => {
      stop = true;
      ctrl.abort();
    };
  }, [id, reload]);

  const byName = useMemo(() => {
    const m: Record<string, string> = {};
    if (doc) for (const n of dslToGraph(doc).nodes) if (n.kind === "state") m[n.name] = n.id;
    return m;
  }, [doc]);
  const statuses = useMemo(() => {
    const out: Record<string, string> = {};
    for (const [name, s] of Object.entries(stateStatuses(events))) if (byName[name]) out[byName[name]] = s;
    return out;
  }, [events, byName]);
  const selName = selected[0] ? Object.keys(byName).find((n) => byName[n] === selected[0]) : undefined;
  const stateEvents = selName ? events.filter((e) => e.state === selName) : [];
  const frameKinds = useMemo(() => {
    const k: Record<string, "map" | "parallel"> = {};
    for (const e of events) if (e.state && (e.type === "MapStarted" || e.type === "ParallelStarted")) k[`${e.frame ?? "r"}.${e.state}`] = e.type === "MapStarted" ? "map" : "parallel";
    return k;
  }, [events]);
  const runs = selName ? stateRuns(stateEvents, selName).filter((v) => frame === null || (v.frame ?? "r") === frame) : [];
  const canAct = atLeast(who, "operator");

  return (
    <section className="page execution-page">
      <header className="page-head">
        <h1>
          Execution <code>{id}</code>
        </h1>
        {execution && <StatusBadge status={execution.status} />}
        {live && <span className="tag live">live</span>}
        {execution && (
          <Link to={`/workflows/${encodeURIComponent(execution.workflow)}`}>
            {execution.workflow} v{execution.version}
          </Link>
        )}
        <button
          type="button"
          disabled={!canAct || !execution || execution.status !== "RUNNING" || action.busy}
          onClick={() =>
            action.run(async () => {
              await api.post(`/api/v1/executions/${enc(id)}/cancel`);
              return "Cancel requested.";
            })
          }
        >
          Cancel
        </button>
        <button
          type="button"
          disabled={!canAct || !execution || !["FAILED", "TIMED_OUT", "ABORTED"].includes(execution.status) || action.busy}
          onClick={() =>
            action.run(async () => {
              await api.post(`/api/v1/executions/${enc(id)}/redrive`);
              setReload((r) => r + 1);
              return "Redriven.";
            })
          }
        >
          Redrive
        </button>
      </header>
      <ErrorBox error={error} />
      <ActionResult action={action} />
      <div className="view-tabs" role="tablist" aria-label="Execution view">
        <button role="tab" aria-selected={view === "graph"} onClick={() => setView("graph")}>
          Graph
        </button>
        <button role="tab" aria-selected={view === "timeline"} onClick={() => setView("timeline")} data-testid="tab-timeline">
          Timeline
        </button>
      </div>
      <div className="execution-body">
        <div className="execution-graph">
          {view === "timeline" ? (
            <TimelineView
              events={events}
              live={live}
              onPick={(b) => {
                const id = byName[b.state];
                setSelected(id ? [id] : []);
                setFrame(b.frame);
              }}
            />
          ) : doc ? (
            <ReactFlowProvider>
              <Canvas
                doc={doc}
                positions={{}}
                problems={[]}
                statuses={statuses}
                selected={selected}
                readOnly
                onSelect={(ids) => {
                  setSelected(ids);
                  setFrame(null);
                }}
              />
            </ReactFlowProvider>
          ) : (
            <p className="muted">Loading the workflow…</p>
          )}
        </div>
        <aside className="inspector" aria-label="State details">
          {selName ? (
            <>
              <h2>{selName}</h2>
              {stateEvents.length === 0 && <p className="muted">This state has not run.</p>}
              {frame !== null && (
                <p className="muted">
                  The run in {frameLabel(frame, frameKinds) || "the top level"}.{" "}
                  <button type="button" className="link" onClick={() => setFrame(null)}>
                    Show every run
                  </button>
                </p>
              )}
              {runs.map((v, i, all) => (
                <section key={`${v.frame}-${v.enteredAt}`} className="visit" aria-label={`Run ${i + 1} of ${selName}`}>
                  {all.length > 1 && (
                    <h3>
                      Run {i + 1} <span className="muted">{frameLabel(v.frame ?? "r", frameKinds) || v.frame}</span>
                    </h3>
                  )}
                  <p>
                    <StatusBadge status={v.status.toUpperCase()} />
                  </p>
                  <h4>Input</h4>
                  <JsonView value={v.input} label={`${selName} input`} />
                  {v.attempts.map((a) => (
                    <div key={a.attempt}>
                      <h4>
                        Attempt {a.attempt}
                        {a.error ? ` · ${a.error.error}` : a.result !== undefined ? " · succeeded" : " · running"}
                        {a.retryInSeconds !== undefined ? ` · retried after ${a.retryInSeconds} s` : ""}
                      </h4>
                      <JsonView value={a.error ?? a.result} label={`${selName} attempt ${a.attempt}`} />
                    </div>
                  ))}
                  {v.status === "succeeded" && (
                    <>
                      <h4>Output</h4>
                      <JsonView value={v.output} label={`${selName} output`} />
                    </>
                  )}
                  {v.error && (
                    <>
                      <h4>Error{v.error.next ? ` (caught, went to ${v.error.next})` : ""}</h4>
                      <JsonView value={v.error} label={`${selName} error`} />
                    </>
                  )}
                </section>
              ))}
              <details>
                <summary>Raw events ({stateEvents.length})</summary>
                {stateEvents.map((e) => (
                  <div key={e.seq}>
                    <b>
                      #{e.seq} {e.type}
                    </b>
                    <JsonView value={e.detail} label={`${e.type} detail`} />
                  </div>
                ))}
              </details>
            </>
          ) : (
            <>
              <h2>Execution</h2>
              <p className="muted">Click a state to see its input, output and errors per attempt.</p>
              {execution && (
                <>
                  <h3>Input</h3>
                  <JsonView value={execution.input} label="Execution input" />
                  <h3>Output</h3>
                  <JsonView value={execution.output} label="Execution output" />
                  {execution.error && (
                    <>
                      <h3>Error</h3>
                      <JsonView value={execution.error} label="Execution error" />
                    </>
                  )}
                  <p className="muted">
                    Started {when(execution.started_at)}
                    {execution.duration_ms != null && <> · {Math.round(execution.duration_ms)} ms</>}
                  </p>
                </>
              )}
            </>
          )}
        </aside>
      </div>
      <h2>History</h2>
      <table className="history">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            <th scope="col">State</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq} className={e.state ? "clickable" : undefined} onClick={() => e.state && byName[e.state] && (setSelected([byName[e.state]]), setFrame(null))}>
              <td>{e.seq}</td>
              <td title={new Date(e.ts * 1000).toISOString()}>{new Date(e.ts * 1000).toLocaleTimeString()}</td>
              <td>{e.type}</td>
              <td>{e.state ?? ""}</td>
              <td className="mono">{e.detail === undefined || e.detail === null ? "" : <EventDetail seq={e.seq} detail={e.detail} />}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** A history event's detail: one line, expandable to the whole value (wrapped, copyable). */
function EventDetail({ seq, detail }: { seq: number; detail: unknown }) {
  const line = JSON.stringify(detail);
  if (line.length <= 160) return <span className="wrap">{line}</span>;
  return (
    <details className="event-detail" onClick={(e) => e.stopPropagation()}>
      <summary className="clip">{line.slice(0, 160)}…</summary>
      <pre className="json wrap" aria-label={`event ${seq} detail`}>
        {JSON.stringify(detail, null, 2)}
      </pre>
      <CopyButton text={JSON.stringify(detail, null, 2)} label="Copy" />
    </details>
  );
}
