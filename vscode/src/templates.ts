/** New and opened templates as files (no `vscode` import). */
import type { Template } from "./api";

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function validateName(name: string): string | undefined {
  return NAME_PATTERN.test(name) ? undefined : "letters, digits, '_', '.', '-' (not first), at most 128 characters";
}

/** The template a workflow file stands for: its name without `.flow.yaml` & co. */
export function templateNameOf(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.(flow|asl)\.(ya?ml|json)$/, "").replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[_.-]+/, "") || "workflow";
}

/** A new workflow (YAML, the DSL): one task calling a connector, ready to run. */
export function newTemplateText(name: string): string {
  return `# ${name}: a StepFlow workflow (DSL v1). Save, then use the "Run" code lens above.
entry: Hello
states:
  Hello:
    type: set
    value: "{% 'hello ' & ($exists(input.name) ? input.name : 'world') %}"
    end: true
`;
}

/** An existing template's definition as a file: JSON (ASL stays ASL), pretty-printed. */
export function templateFile(t: Template): { fileName: string; text: string } {
  const definition = t.definition as Record<string, unknown> | undefined;
  const asl = !!definition && "StartAt" in definition && "States" in definition;
  return { fileName: `${t.name}.${asl ? "asl" : "flow"}.json`, text: JSON.stringify(definition ?? {}, null, 2) + "\n" };
}
