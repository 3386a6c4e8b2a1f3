/** The inspector for an Amazon States Language definition: the canvas draws it read-only and
 * the Code view edits it; this panel shows the selected state's ASL exactly as it is stored. */
import { aslStateAt } from "../dsl/asl";
import { parseNodeId } from "../dsl/scope";
import type { Problem } from "../dsl/validate";
import type { Workflow } from "../dsl/types";

export function AslInspector({ doc, selected, problems, onEditCode }: { doc: Workflow; selected: string[]; problems: Problem[]; onEditCode: () => void }) {
  const id = selected.length === 1 ? selected[0] : undefined;
  const state = id ? aslStateAt(doc, id) : undefined;
  const d = doc as unknown as Record<string, unknown>;
  return (
    <aside className="inspector" aria-label="Inspector">
      {state && id ? (
        <>
          <h2>
            {parseNodeId(id).name} <span className="tag">{String(state.Type ?? "?")}</span>
          </h2>
          <p className="muted">This state as stored (Amazon States Language). Change it in the Code view.</p>
          <pre className="json wrap" aria-label={`${parseNodeId(id).name} ASL`}>
            {JSON.stringify(state, null, 2)}
          </pre>
        </>
      ) : (
        <>
          <h2>Workflow (ASL)</h2>
          <dl className="asl-meta">
            <dt>StartAt</dt>
            <dd>
              <code>{String(d.StartAt ?? "")}</code>
            </dd>
            {d.QueryLanguage !== undefined && (
              <>
                <dt>QueryLanguage</dt>
                <dd>{String(d.QueryLanguage)}</dd>
              </>
            )}
            {d.TimeoutSeconds !== undefined && (
              <>
                <dt>TimeoutSeconds</dt>
                <dd>{String(d.TimeoutSeconds)}</dd>
              </>
            )}
            {d.Comment !== undefined && (
              <>
                <dt>Comment</dt>
                <dd>{String(d.Comment)}</dd>
              </>
            )}
          </dl>
          <p className="muted">Select a state to see its definition.</p>
        </>
      )}
      {problems.length > 0 && (
        <ul className="problem-list" aria-label="Problems">
          {problems.map((p, i) => (
            <li key={i} className={p.severity}>
              <code>{p.pointer || "/"}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
      <button type="button" onClick={onEditCode} data-testid="asl-edit-code">
        Edit in the Code view
      </button>
    </aside>
  );
}
