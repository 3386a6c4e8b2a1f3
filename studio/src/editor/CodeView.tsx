/** The DSL as JSON in CodeMirror, in sync both ways: edits of valid JSON become one
 * transaction; invalid JSON stays on screen with its error and changes nothing. */
import type { CompletionContext, CompletionResult } from "@codemirror/autocomplete";
import { json, jsonLanguage, jsonParseLinter } from "@codemirror/lang-json";
import { syntaxTree } from "@codemirror/language";
import { linter, lintGutter } from "@codemirror/lint";
import { Annotation, EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "react";
import { api } from "../api/client";
import { suggestAt, type DslSchema } from "./completion";

let schema: DslSchema | null = null;
let schemaRequested = false;

function loadSchema(): void {
  if (schemaRequested) return;
  schemaRequested = true;
  api.get<DslSchema>("/api/v1/workflows/schema").then(
    (s) => (schema = s),
    () => (schemaRequested = false),
  );
}

/** Completion from the server's DSL schema (loaded once; none while it is not there). */
function dslCompletion(context: CompletionContext): CompletionResult | null {
  loadSchema();
  if (!schema) return null;
  const r = suggestAt(context.state.doc.toString(), context.pos, schema, syntaxTree(context.state));
  if (!r || (!r.options.length && !context.explicit)) return null;
  const quoted = context.state.sliceDoc(r.from - 1, r.from) === '"';
  return {
    from: r.from,
    validFor: /^[\w.-]*$/,
    options: r.options.map((o) => ({
      label: o.label,
      detail: o.detail,
      type: o.kind === "property" ? "property" : o.kind === "type" ? "enum" : "variable",
      apply: quoted || o.kind !== "property" ? o.label : `"${o.label}": `,
    })),
  };
}

const external = Annotation.define<boolean>();

export function CodeView({ value, error, readOnly, onChange }: { value: string; error: string | null; readOnly: boolean; onChange: (text: string) => void }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const change = useRef(onChange);
  change.current = onChange;
  const timer = useRef<number | undefined>(undefined);

  useEffect(() => {
    loadSchema();
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          json(),
          jsonLanguage.data.of({ autocomplete: dslCompletion }),
          linter(jsonParseLinter(), { delay: 300 }),
          lintGutter(),
          EditorState.readOnly.of(readOnly),
          EditorView.contentAttributes.of({ "aria-label": "Workflow JSON", "data-testid": "code-editor" }),
          EditorView.updateListener.of((u) => {
            if (!u.docChanged || u.transactions.every((t) => t.annotation(external))) return;
            window.clearTimeout(timer.current);
            const text = u.state.doc.toString();
            timer.current = window.setTimeout(() => change.current(text), 300);
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      window.clearTimeout(timer.current);
      v.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [readOnly]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const current = v.state.doc.toString();
    if (current === value) return;
    window.clearTimeout(timer.current);
    v.dispatch({ changes: { from: 0, to: current.length, insert: value }, annotations: external.of(true) });
  }, [value]);

  return (
    <div className="code-view">
      <div ref={host} className="code-host" />
      {error && (
        <p className="field-error code-error" role="alert">
          Invalid JSON, not applied: {error}
        </p>
      )}
    </div>
  );
}
