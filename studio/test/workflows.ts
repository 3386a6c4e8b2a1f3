/** The workflows every round-trip test uses: the Studio's fixtures and examples/workflows/. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import type { Workflow } from "../src/dsl/types";

const here = import.meta.dirname;
const sources = [join(here, "fixtures"), join(here, "..", "..", "examples", "workflows")];

export function workflowFiles(): { name: string; doc: Workflow }[] {
  const out: { name: string; doc: Workflow }[] = [];
  for (const dir of sources) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith(".input.json")) continue; // an example's sample input, not a workflow
      const text = readFileSync(join(dir, f), "utf8");
      let raw: unknown;
      if (f.endsWith(".json")) raw = JSON.parse(text);
      else if (f.endsWith(".yaml") || f.endsWith(".yml")) raw = parseYaml(text);
      else continue;
      if (typeof raw !== "object" || raw === null) continue;
      // an example may wrap the definition with its name and sample input
      const wrapped = (raw as { definition?: Workflow }).definition;
      const doc = wrapped && typeof wrapped === "object" && wrapped.states ? wrapped : (raw as Workflow);
      if (doc.states) out.push({ name: f, doc });
    }
  }
  return out;
}

