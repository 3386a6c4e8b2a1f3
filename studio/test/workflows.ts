/** The workflows every round-trip test uses: the Studio's fixtures and examples/workflows/. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Workflow } from "../src/dsl/types";

const here = import.meta.dirname;
const sources = [join(here, "fixtures"), join(here, "..", "..", "examples", "workflows")];

export function workflowFiles(): { name: string; doc: Workflow }[] {
  const out: { name: string; doc: Workflow }[] = [];
  for (const dir of sources) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (!f.endsWith(".json")) continue;
      const raw = JSON.parse(readFileSync(join(dir, f), "utf8"));
      // an example may wrap the definition with its name and sample input
      const doc = raw.definition && raw.definition.states ? raw.definition : raw;
      if (doc.states) out.push({ name: f, doc });
    }
  }
  return out;
}

