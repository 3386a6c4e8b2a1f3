/** Inspector inputs that commit one transaction when an edit is finished (blur or Enter),
 * not one per keystroke, and show the problems reported for their JSON pointer. */
import { useEffect, useState, type ReactNode } from "react";
import type { Problem } from "../dsl/validate";

let seq = 0;
function useId(prefix: string): string {
  const [id] = useState(() => `${prefix}-${++seq}`);
  return id;
}

export function FieldProblems({ problems, pointer }: { problems: Problem[]; pointer: string }) {
  const mine = problems.filter((p) => p.pointer === pointer);
  if (!mine.length) return null;
  return (
    <>
      {mine.map((p, i) => (
        <span key={i} className={p.severity === "warning" ? "field-warning" : "field-error"} data-pointer={pointer}>
          {p.message}
        </span>
      ))}
    </>
  );
}

export function TextField({
  label,
  value,
  onCommit,
  problems = [],
  pointer = "",
  placeholder,
  readOnly,
  list,
  mono,
  testId,
  check,
}: {
  label: string;
  value: string | undefined;
  onCommit: (v: string) => void;
  problems?: Problem[];
  pointer?: string;
  placeholder?: string;
  readOnly?: boolean;
  list?: string;
  mono?: boolean;
  testId?: string;
  /** why a value is refused (null: accepted); a refused value is not committed and the field
   * goes back to the value in force, saying so */
  check?: (v: string) => string | null;
}) {
  const id = useId("f");
  const [text, setText] = useState(value ?? "");
  const [refused, setRefused] = useState<string | null>(null);
  useEffect(() => setText(value ?? ""), [value]);
  const commit = () => {
    if (text === (value ?? "")) return;
    const why = check?.(text) ?? null;
    if (why) {
      setRefused(`${why}. It stays "${value ?? ""}".`);
      setText(value ?? "");
      return;
    }
    setRefused(null);
    onCommit(text);
  };
  const bad = !!refused || problems.some((p) => p.pointer === pointer && p.severity === "error");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        className={mono ? "mono" : undefined}
        value={text}
        placeholder={placeholder}
        readOnly={readOnly}
        list={list}
        aria-invalid={bad}
        data-testid={testId}
        aria-describedby={refused ? `${id}-refused` : undefined}
        onChange={(e) => setText(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
          if (e.key === "Escape") setText(value ?? "");
        }}
      />
      {refused && (
        <span className="field-error" id={`${id}-refused`} role="alert" data-testid={testId ? `${testId}-refused` : undefined}>
          {refused}
        </span>
      )}
      <FieldProblems problems={problems} pointer={pointer} />
    </div>
  );
}

export function NumberField({
  label,
  value,
  onCommit,
  problems = [],
  pointer = "",
  readOnly,
  min,
}: {
  label: string;
  value: number | undefined;
  onCommit: (v: number | undefined) => void;
  problems?: Problem[];
  pointer?: string;
  readOnly?: boolean;
  min?: number;
}) {
  const id = useId("n");
  const [text, setText] = useState(value === undefined ? "" : String(value));
  useEffect(() => setText(value === undefined ? "" : String(value)), [value]);
  const commit = () => {
    const v = text.trim() === "" ? undefined : Number(text);
    if (v !== undefined && Number.isNaN(v)) return setText(value === undefined ? "" : String(value));
    if (v !== value) onCommit(v);
  };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="number" min={min} value={text} readOnly={readOnly} onChange={(e) => setText(e.target.value)} onBlur={commit} onKeyDown={(e) => e.key === "Enter" && commit()} />
      <FieldProblems problems={problems} pointer={pointer} />
    </div>
  );
}

/** A JSON value edited as text; invalid JSON stays in the box with its error and is not committed. */
/** A whole `{% … %}` expression (one, nothing around it). */
export function isExpression(value: unknown): value is string {
  return typeof value === "string" && /^\{%[\s\S]*%\}$/.test(value) && value.indexOf("%}") === value.length - 2;
}

export function JsonInput({
  label,
  value,
  onCommit,
  problems = [],
  pointer = "",
  readOnly,
  rows = 4,
}: {
  label: string;
  value: unknown;
  onCommit: (v: unknown) => void;
  problems?: Problem[];
  pointer?: string;
  readOnly?: boolean;
  rows?: number;
}) {
  const id = useId("j");
  const shown = value === undefined ? "" : isExpression(value) ? value : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(shown);
    setError(null);
  }, [shown]);
  const commit = () => {
    if (text === shown) return;
    if (!text.trim()) return onCommit(undefined);
    // a bare `{% … %}` is an expression: taken as it is, no JSON quotes needed
    if (isExpression(text.trim())) {
      setError(null);
      return onCommit(text.trim());
    }
    try {
      onCommit(JSON.parse(text));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <span className="field-note muted" id={`${id}-hint`}>
        JSON, or a <code>{"{% … %}"}</code> expression
      </span>
      <textarea
        id={id}
        className="mono"
        rows={rows}
        value={text}
        readOnly={readOnly}
        spellCheck={false}
        aria-invalid={!!error}
        aria-describedby={`${id}-hint`}
        onChange={(e) => setText(e.target.value)}
        onBlur={commit}
      />
      {error && <span className="field-error">not JSON and not a {"{% … %}"} expression: {error}</span>}
      <FieldProblems problems={problems} pointer={pointer} />
    </div>
  );
}

export function SelectField({
  label,
  value,
  options,
  onChange,
  problems = [],
  pointer = "",
  disabled,
  testId,
}: {
  label: string;
  value: string;
  options: { value: string; label: string }[];
  onChange: (v: string) => void;
  problems?: Problem[];
  pointer?: string;
  disabled?: boolean;
  testId?: string;
}) {
  const id = useId("s");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} disabled={disabled} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldProblems problems={problems} pointer={pointer} />
    </div>
  );
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <fieldset className="section">
      <legend>{title}</legend>
      {actions && <div className="section-actions">{actions}</div>}
      {children}
    </fieldset>
  );
}
