/** The DSL as JSON in CodeMirror, in sync both ways: edits of valid JSON become one
 * transaction; invalid JSON stays on screen with its error and changes nothing. */
import { json, jsonParseLinter } from "@codemirror/lang-json";
import { linter, lintGutter } from "@codemirror/lint";
import { Annotation, EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "react";

const external = Annotation.define<boolean>();

export function CodeView({ value, error, readOnly, onChange }: { value: string; error: string | null; readOnly: boolean; onChange: (text: string) => void }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const change = useRef(onChange);
  change.current = onChange;
  const timer = useRef<number | undefined>(undefined);

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          json(),
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
