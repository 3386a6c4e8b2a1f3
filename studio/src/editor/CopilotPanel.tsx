/** The Copilot side panel of the editor (issue 19): a Copilot session on the workflow, its
 * rule-based (and, when a model is configured, model-based) suggestions, the simulation of the
 * open draft (cost, duration p50/p95, risks), suggested operations applied step by step on the
 * canvas with undo, and Apply: the draft published as a new version by a reviewer's operator key. */
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { checkProposal, copilot, modelStatus, modelSuggestions, nlInput, stable, ms, opLabel, proposalsOf, usd, type CopilotOp, type CopilotSession, type ModelInfo, type Simulation, type Suggestion, type Validation } from "../api/copilot";
import type { TaskEnvelope } from "../api/tasks";
import { ActionResult, Dialog, ErrorBox, errorText, JsonField, parseJsonField, plural, useAction } from "../components/common";
import type { Workflow } from "../dsl/types";
import { useEditor } from "./store";


interface Step {
  op: CopilotOp;
  before: Workflow;
  after: Workflow;
}

function SimulationView({ sim }: { sim: Simulation }) {
  return (
    <div className="copilot-sim" data-testid="copilot-simulation">
      <dl className="props" aria-label="Simulation">
        <div>
          <dt>feasible</dt>
          <dd data-testid="sim-feasible">{sim.feasible ? "yes" : "no"}</dd>
        </div>
        <div>
          <dt>cost</dt>
          <dd data-testid="sim-cost">{usd(sim.estimated_cost_usd)}</dd>
        </div>
        <div>
          <dt>duration p50 / p95</dt>
          <dd data-testid="sim-duration">
            {ms(sim.estimated_duration_ms.p50)} / {ms(sim.estimated_duration_ms.p95)} <span className="muted">({sim.duration_source === "history" ? "from recorded runs" : "modelled, no history yet"})</span>
          </dd>
        </div>
        {sim.budget_usd !== null && sim.budget_usd !== undefined && (
          <div>
            <dt>budget</dt>
            <dd>
              {sim.budget_sufficient ? "sufficient" : "not sufficient"} · {usd(sim.budget_remaining_usd)} left
            </dd>
          </div>
        )}
      </dl>
      {sim.problems.length > 0 && (
        <ul className="problem-list" aria-label="Simulation problems">
          {sim.problems.map((p, i) => (
            <li key={i} className="error">
              <code>{p.pointer || "/"}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
      <h4>Risks</h4>
      {sim.risks.length === 0 ? (
        <p className="muted">None found.</p>
      ) : (
        <ul className="problem-list" aria-label="Risks" data-testid="sim-risks">
          {sim.risks.map((r, i) => (
            <li key={i} className="warning">
              <b>{r.rule.replace(/_/g, " ")}</b> <code>{r.pointer || "/"}</code> {r.message}
            </li>
          ))}
        </ul>
      )}
      {sim.step_estimates.length > 0 && (
        <details>
          <summary>{plural(sim.step_estimates.length, "step estimate")}</summary>
          <table aria-label="Step estimates">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Skill</th>
                <th scope="col">Cost</th>
                <th scope="col">p50</th>
                <th scope="col">p95</th>
              </tr>
            </thead>
            <tbody>
              {sim.step_estimates.map((s, i) => (
                <tr key={i}>
                  <td>{s.state}</td>
                  <td className="mono clip">{s.skill}</td>
                  <td>{usd(s.cost)}</td>
                  <td>{ms(s.latency.p50)}</td>
                  <td>{ms(s.latency.p95)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </div>
  );
}

function ApplyDialog({ session, onDone, onClose }: { session: CopilotSession; onDone: (s: CopilotSession) => void; onClose: () => void }) {
  const [key, setKey] = useState("");
  const act = useAction();
  return (
    <Dialog title={`Publish the Copilot's draft of ${session.workflow}`} onClose={onClose}>
      <p>
        A draft is published by a human operator key that did <b>not</b> edit it. The Copilot's steps ran with the key you are signed in with, so the
        reviewer applies with their own operator key. It is sent in this one request and not kept.
      </p>
      <div className="field">
        <label htmlFor="copilot-apply-key">Reviewer's operator key</label>
        <input id="copilot-apply-key" type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
      </div>
      <ActionResult action={act} />
      <div className="dialog-actions">
        <button
          type="button"
          className="primary"
          disabled={act.busy || !key.trim()}
          onClick={() =>
            act.run(async () => {
              const out = await copilot.apply(session.session_id, key.trim());
              setKey("");
              onDone(out);
              onClose();
            })
          }
        >
          Apply as new version
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

export function CopilotPanel({ name, readOnly, asl, onClose }: { name: string | null; readOnly: boolean; asl: boolean; onClose: () => void }) {
  const doc = useEditor((s) => s.snapshot.doc);
  const [session, setSession] = useState<CopilotSession | null>(null);
  const [draft, setDraft] = useState<Workflow | null>(null);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [suggestions, setSuggestions] = useState<Suggestion[]>([]);
  const [model, setModel] = useState<ModelInfo | null>(null);
  const [rejected, setRejected] = useState<{ title: string; reason: string }[]>([]);
  const [plan, setPlan] = useState<{ s: Suggestion; next: number } | null>(null);
  const [steps, setSteps] = useState<Step[]>([]);
  const [sim, setSim] = useState<Simulation | null>(null);
  const [simInput, setSimInput] = useState("{}");
  const [ask, setAsk] = useState("");
  const [openError, setOpenError] = useState<unknown>(null);
  const [dialog, setDialog] = useState(false);
  const act = useAction();
  const simAct = useAction();
  const askAct = useAction();
  const canEdit = !!name && !asl;
  const live = useRef(true);
  useEffect(() => () => void (live.current = false), []);

  const simulate = (definition: Workflow = useEditor.getState().snapshot.doc) =>
    simAct.run(async () => {
      const out = await copilot.simulate(definition, parseJsonField("Simulation input", simInput) ?? null);
      if (live.current) setSim(out);
    });

  const suggest = async (sid: string) => {
    const r = await copilot.operate(sid, { op: "suggest_optimization" });
    const result = r.result as { suggestions?: Suggestion[]; model?: ModelInfo };
    const fromModel = modelSuggestions(result.model);
    setSuggestions([...(result.suggestions ?? []).map((s) => ({ ...s, source: "rules" as const })), ...fromModel.accepted]);
    setRejected(fromModel.rejected);
    setModel(result.model ?? null);
  };

  const openSession = async () => {
    if (!name) return;
    const s = await copilot.open(name);
    if (!live.current) return;
    setSession(s);
    setDraft(s.draft);
    setValidation(s.validation);
    setSteps([]);
    setPlan(null);
    await suggest(s.session_id);
  };

  useEffect(() => {
    setOpenError(null);
    if (canEdit) openSession().catch((e) => live.current && setOpenError(e));
    void simulate();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name, asl]);

  const inSync = draft !== null && stable(draft) === stable(doc);
  const applied = session?.status === "applied";

  const applyNext = () =>
    act.run(async () => {
      if (!session || !plan) return;
      const op = plan.s.operations![plan.next];
      const before = useEditor.getState().snapshot.doc;
      const r = await copilot.operate(session.session_id, op);
      useEditor.getState().apply(`copilot: ${opLabel(op)}`, () => r.draft);
      setSteps((s) => [...s, { op, before, after: useEditor.getState().snapshot.doc }]);
      setDraft(r.draft);
      setValidation(r.validation);
      const next = plan.next + 1;
      const total = plan.s.operations!.length;
      setPlan({ ...plan, next });
      if (sim) void simulate(r.draft);
      const state = r.validation.valid ? "the draft is valid" : `the draft has ${plural(r.validation.errors.length, "problem")}${next < total ? " (more steps follow)" : ""}`;
      return `Step ${next} of ${total} applied: ${opLabel(op)}; ${state}.`;
    });

  const undoStep = () =>
    act.run(async () => {
      if (!name || !steps.length) return;
      const last = steps[steps.length - 1];
      const rest = steps.slice(0, -1);
      // the canvas: undo the editor's own transaction when it is still the latest, else restore
      const ed = useEditor.getState();
      if (stable(ed.snapshot.doc) === stable(last.after) && ed.canUndo) ed.undo();
      else ed.apply(`copilot: undo ${opLabel(last.op)}`, () => last.before);
      // the server's draft: a fresh session on the same version, replaying the steps that remain
      const s = await copilot.open(name);
      let d = s.draft;
      let v = s.validation;
      for (const step of rest) {
        const r = await copilot.operate(s.session_id, step.op);
        d = r.draft;
        v = r.validation;
      }
      setSession(s);
      setDraft(d);
      setValidation(v);
      setSteps(rest);
      if (plan && plan.next > 0) setPlan({ ...plan, next: plan.next - 1 });
      if (sim) void simulate(d);
      return `Undone: ${opLabel(last.op)}.`;
    });

  const sendRequest = () =>
    askAct.run(async () => {
      if (!ask.trim()) throw new Error("request: say what to change");
      // the same intent and the same one parameter (`input`) the server's suggest_optimization
      // uses, so one prompt template serves both: here it carries the request and the draft
      const env = await api.post<TaskEnvelope>("/api/v1/tasks", {
        intent: "copilot.suggest",
        params: { input: nlInput(ask.trim(), draft ?? doc) },
        stream: false,
      });
      if (env.status !== "OK") throw new Error(`the model did not answer (${env.status}): ${errorText(env.error ?? "no result")}`);
      // validated like any other before they are shown: on a scratch copy of this draft
      const found = proposalsOf(env.result);
      const ok: Suggestion[] = [];
      const refused: { title: string; reason: string }[] = [];
      for (const p of found) {
        const why = name ? await checkProposal(name, steps.map((x) => x.op), p.operations ?? []) : "the workflow is not saved";
        if (why) refused.push({ title: p.message, reason: why });
        else ok.push({ ...p, valid: true });
      }
      setSuggestions((s) => [...s.filter((x) => x.source !== "model"), ...ok]);
      setRejected(refused);
      if (!found.length) return { warning: "The model's answer held no operations." };
      return refused.length
        ? { warning: `The model proposed ${plural(found.length, "change")}; ${refused.length} failed validation (listed with the reason).` }
        : `The model proposed ${plural(found.length, "change")}, each checked on a copy of the draft.`;
    });

  const status = modelStatus(model);
  return (
    <aside className="inspector copilot" aria-label="Copilot">
      <div className="copilot-head">
        <h2>Copilot</h2>
        <button type="button" className="ghost" onClick={onClose}>
          Close Copilot
        </button>
      </div>
      {!name && <p className="notice">Save the workflow first: the Copilot works on a stored workflow. The simulation below is of the canvas.</p>}
      {asl && <p className="notice">The Copilot edits StepFlow DSL drafts; this is an ASL definition. The simulation below still applies.</p>}
      <ErrorBox error={openError} />
      {session && (
        <p className="muted" data-testid="copilot-session">
          Session on version {session.base_version}
          {applied ? `, published as version ${session.applied_version}` : ""} · {plural(steps.length, "step")} applied
          {validation && !applied && <> · draft {validation.valid ? "valid" : `has ${plural(validation.errors.length, "problem")}`}</>}
        </p>
      )}
      {session && !inSync && !applied && (
        <p className="notice warn" role="note">
          The canvas differs from the Copilot's draft (unsaved edits of your own). Steps replace the canvas with the draft; Apply publishes the draft.
          Save first to have your edits in a new session.
        </p>
      )}

      <section aria-label="Suggestions">
        <h3>Suggestions</h3>
        {session && !suggestions.length && <p className="muted">No suggestions: the rules found nothing to improve.</p>}
        <ul className="copilot-suggestions">
          {suggestions.map((s, i) => (
            <li key={i} data-testid={`suggestion-${s.rule}`}>
              <b>{s.rule.replace(/_/g, " ")}</b>
              {s.state && <code> {s.state}</code>}
              {s.source === "model" && <span className="tag">model</span>}
              {s.valid === false && <span className="tag warn">would add problems</span>}
              <p>{s.message}</p>
              {s.operations?.length ? (
                <button type="button" disabled={readOnly || !canEdit || applied || act.busy || plan?.s === s} onClick={() => setPlan({ s, next: 0 })}>
                  Step through ({plural(s.operations.length, "step")})
                </button>
              ) : (
                <span className="muted">advice only: no operations</span>
              )}
            </li>
          ))}
        </ul>
        {rejected.length > 0 && (
          <details data-testid="copilot-rejected">
            <summary>{plural(rejected.length, "proposal")} of the model rejected by validation</summary>
            <ul className="problem-list">
              {rejected.map((r, i) => (
                <li key={i} className="warning">
                  {r.title}: {r.reason}
                </li>
              ))}
            </ul>
          </details>
        )}
        {plan && (
          <div className="copilot-plan" aria-label="Steps">
            <ol>
              {plan.s.operations!.map((op, i) => (
                <li key={i} className={i < plan.next ? "done" : i === plan.next ? "next" : undefined} data-testid="copilot-step">
                  {opLabel(op)} {i < plan.next && <span className="tag">applied</span>}
                </li>
              ))}
            </ol>
            <div className="button-row">
              <button type="button" className="primary" disabled={act.busy || plan.next >= plan.s.operations!.length || readOnly} onClick={applyNext}>
                Apply next step
              </button>
              <button type="button" disabled={act.busy} onClick={() => setPlan(null)}>
                Done
              </button>
            </div>
          </div>
        )}
        <div className="button-row">
          <button type="button" disabled={act.busy || !steps.length || applied} onClick={undoStep}>
            Undo step
          </button>
          <button type="button" className="primary" disabled={!session || applied || !steps.length || !inSync || readOnly} onClick={() => setDialog(true)} title={!inSync ? "the canvas differs from the draft" : undefined}>
            Apply as new version…
          </button>
          {applied && (
            <button type="button" onClick={() => act.run(async () => (await openSession(), "A new session is open on the published version."))}>
              New session
            </button>
          )}
        </div>
        <ActionResult action={act} />
      </section>

      <section aria-label="Simulation">
        <h3>Simulation of the open draft</h3>
        <JsonField id="copilot-sim-input" label="Input (JSON)" value={simInput} onChange={setSimInput} rows={2} />
        <button type="button" disabled={simAct.busy} onClick={() => simulate()}>
          Simulate
        </button>
        <ActionResult action={simAct} />
        {sim && <SimulationView sim={sim} />}
      </section>
      <section aria-label="Ask the Copilot">
        <h3>Ask</h3>
        <p className={status.configured ? "muted" : "notice"} data-testid="copilot-model" role="status">
          {status.text}
        </p>
        <div className="field">
          <label htmlFor="copilot-ask">Request in your words</label>
          <textarea id="copilot-ask" rows={2} value={ask} onChange={(e) => setAsk(e.target.value)} disabled={!status.configured || !session} placeholder="add a retry to every HTTP call" />
        </div>
        <button type="button" disabled={!status.configured || !session || askAct.busy} onClick={sendRequest}>
          Send request
        </button>
        <ActionResult action={askAct} />
      </section>

      {dialog && session && (
        <ApplyDialog
          session={session}
          onClose={() => setDialog(false)}
          onDone={(out) => {
            setSession(out);
            setSteps([]);
            setPlan(null);
            if (name && out.applied_version) useEditor.getState().load(name, out.draft, out.applied_version);
            act.run(async () => `Published as version ${out.applied_version}.`);
          }}
        />
      )}
    </aside>
  );
}
