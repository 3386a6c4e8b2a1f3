/** Pieces every page uses: loading lists with paging and a filter, errors, empty states,
 * JSON views, dialogs. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { api, ApiError, type Page } from "../api/client";

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    const fields = e.detailList
      .map((d) => (d.field || d.pointer ? `${d.field ?? d.pointer}: ${d.message ?? ""}` : ""))
      .filter(Boolean)
      .join("; ");
    return fields && !e.message.includes(fields) ? `${e.message} (${fields})` : e.message;
  }
  return (e as Error)?.message ?? String(e);
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError && error.unavailable) {
    return (
      <div className="notice unavailable" role="status">
        Service not available: this server has no {error.message.replace(/^no route for \w+ /, "")} yet.
      </div>
    );
  }
  return (
    <div className="notice error" role="alert">
      {errorText(error)}
    </div>
  );
}

/** A JSON value shown in full: wrapped (no line is cut off), with a button that copies it. */
export function JsonView({ value, label }: { value: unknown; label?: string }) {
  const text = value === undefined ? "—" : JSON.stringify(value, null, 2);
  return (
    <div className="json-box">
      <pre className="json wrap" aria-label={label}>
        {text}
      </pre>
      {value !== undefined && <CopyButton text={text} label="Copy" />}
    </div>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<string | null>(null);
  return (
    <button
      type="button"
      className="copy"
      aria-label={label}
      title={label}
      onClick={() =>
        navigator.clipboard.writeText(text).then(
          () => setDone("copied"),
          () => setDone("select and copy by hand"),
        )
      }
    >
      {done ?? "Copy"}
    </button>
  );
}

export function when(ts: unknown): string {
  if (typeof ts !== "number") return typeof ts === "string" ? ts : "—";
  return new Date(ts * 1000).toLocaleString();
}

/** Load a paged list from `path`; `more()` appends the next page. */
export function usePagedList<T>(path: string, query: Record<string, string | number | undefined> = {}) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const pages = useRef(0);
  const q = JSON.stringify(query);
  const load = useCallback(
    async (after?: string | null) => {
      setLoading(true);
      try {
        const page = await api.get<Page<T>>(path, { ...JSON.parse(q), limit: 50, cursor: after ?? undefined });
        setItems((prev) => (after ? [...prev, ...(page.items ?? [])] : (page.items ?? [])));
        setCursor(page.next_cursor ?? null);
        pages.current = after ? pages.current + 1 : 1;
        setError(null);
      } catch (e) {
        setError(e);
        if (!after) setItems([]);
      } finally {
        setLoading(false);
      }
    },
    [path, q],
  );
  /** The first page again, quietly (no "Loading…"), keeping the further pages already loaded. */
  const refresh = useCallback(
    async (keyOf: (row: T) => string) => {
      try {
        const page = await api.get<Page<T>>(path, { ...JSON.parse(q), limit: 50 });
        if (pages.current > 1) setItems((prev) => mergeFirstPage(prev, page.items ?? [], keyOf));
        else {
          setItems(page.items ?? []);
          setCursor(page.next_cursor ?? null);
        }
        setError(null);
      } catch {
        /* a failed refresh keeps what is shown; the next one may succeed */
      }
    },
    [path, q],
  );
  useEffect(() => {
    void load();
  }, [load]);
  return { items, error, loading, more: cursor ? () => load(cursor) : null, reload: () => load(), refresh };
}

/** A list's fresh first page followed by the rows loaded before that it does not hold (newest
 * first: rows pushed off the first page by newer ones stay, in order, and the cursor still
 * points after the last of them). */
export function mergeFirstPage<T>(prev: T[], first: T[], keyOf: (row: T) => string): T[] {
  const seen = new Set(first.map(keyOf));
  return [...first, ...prev.filter((r) => !seen.has(keyOf(r)))];
}

export interface Column<T> {
  label: string;
  value: (row: T) => ReactNode;
  text?: (row: T) => string;
}

/** A table with a text filter, paging and an empty state that says what to do next. */
export function DataTable<T>({
  caption,
  rows,
  columns,
  empty,
  onSelect,
  selectedKey,
  rowKey,
  more,
  loading,
}: {
  caption: string;
  rows: T[];
  columns: Column<T>[];
  empty: ReactNode;
  onSelect?: (row: T) => void;
  selectedKey?: string | null;
  rowKey: (row: T) => string;
  more?: (() => void) | null;
  loading?: boolean;
}) {
  const [filter, setFilter] = useState("");
  const f = filter.trim().toLowerCase();
  const shown = f
    ? rows.filter((r) => columns.some((c) => (c.text ? c.text(r) : String(c.value(r) ?? "")).toLowerCase().includes(f)))
    : rows;
  return (
    <div className="table-wrap">
      <div className="table-tools">
        <label>
          <span className="sr-only">Filter {caption}</span>
          <input type="search" placeholder={`Filter ${caption.toLowerCase()}…`} value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
        <span className="count">
          {shown.length} of {rows.length}
          {more ? "+" : ""}
        </span>
      </div>
      {!loading && rows.length === 0 ? (
        <div className="empty">{empty}</div>
      ) : (
        <table>
          <caption className="sr-only">{caption}</caption>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.label} scope="col">
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr
                key={rowKey(r)}
                className={selectedKey === rowKey(r) ? "selected" : onSelect ? "clickable" : undefined}
                onClick={onSelect ? () => onSelect(r) : undefined}
                tabIndex={onSelect ? 0 : undefined}
                onKeyDown={onSelect ? (e) => e.key === "Enter" && onSelect(r) : undefined}
              >
                {columns.map((c) => (
                  <td key={c.label}>{c.value(r)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {loading && <p className="muted">Loading…</p>}
      {more && (
        <button className="ghost" onClick={more}>
          Load more
        </button>
      )}
    </div>
  );
}

export function Dialog({ title, children, onClose }: { title: string; children: ReactNode; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-label={title} onClose={onClose} onCancel={onClose}>
      <h2>{title}</h2>
      {children}
    </dialog>
  );
}

/** A button running an async action, showing its error (or result message) beside it. */
/** "1 state", "2 states", "0 problems". */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** An action's outcome that is not a success (problems found): shown as a warning. */
export interface Warn {
  warning: string;
}

export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [tone, setTone] = useState<"ok" | "warn">("ok");
  const run = async (fn: () => Promise<string | Warn | void>) => {
    setBusy(true);
    setError(null);
    setMessage(null);
    try {
      const m = await fn();
      if (typeof m === "string" && m) (setMessage(m), setTone("ok"));
      else if (m && typeof m === "object") (setMessage(m.warning), setTone("warn"));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const clear = () => {
    setError(null);
    setMessage(null);
  };
  return { busy, error, message, tone, run, setError, clear };
}

export function ActionResult({ action }: { action: ReturnType<typeof useAction> }) {
  return (
    <>
      <ErrorBox error={action.error} />
      {action.message && (
        <div className={`notice ${action.tone}`} role="status">
          {action.message}
        </div>
      )}
    </>
  );
}

/** A textarea holding JSON; `parse()` returns the value or throws naming the field. */
export function JsonField({ id, label, value, onChange, rows = 6 }: { id: string; label: string; value: string; onChange: (v: string) => void; rows?: number }) {
  let problem: string | null = null;
  try {
    if (value.trim()) JSON.parse(value);
  } catch (e) {
    problem = (e as Error).message;
  }
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea id={id} className="mono" rows={rows} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={!!problem} spellCheck={false} />
      {problem && <span className="field-error">{problem}</span>}
    </div>
  );
}

export function parseJsonField(label: string, text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
}

/** A resource's fields as a definition list: times readable, nested values as compact JSON. */
export function Props({ value, label }: { value: Record<string, unknown> | null | undefined; label: string }) {
  if (!value) return null;
  return (
    <dl className="props" aria-label={label}>
      {Object.entries(value).map(([k, v]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, " ")}</dt>
          <dd className={typeof v === "object" && v !== null ? "mono" : undefined}>
            {v === null || v === undefined || v === "" ? "—" : k.endsWith("_at") && typeof v === "number" ? when(v) : typeof v === "object" ? JSON.stringify(v) : String(v)}
          </dd>
        </div>
      ))}
    </dl>
  );
}
