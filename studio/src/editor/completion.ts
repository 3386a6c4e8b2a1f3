/** Completion in the code view from the DSL's JSON Schema (GET /api/v1/workflows/schema):
 * the fields a state of its type may have, the state types, and state names where a
 * transition (`next`, `default`, `entry`) is written. */
import { jsonLanguage } from "@codemirror/lang-json";
import type { SyntaxNode, Tree } from "@lezer/common";
import { STATE_TYPES } from "../dsl/types";

export interface DslSchema {
  properties?: Record<string, { description?: string }>;
  $defs?: Record<string, { properties?: Record<string, { description?: string; const?: string }> }>;
}

export interface Suggestion {
  label: string;
  detail?: string;
  kind: "property" | "type" | "state";
}

const TRANSITIONS = new Set(["next", "default", "entry"]);

function text(src: string, node: SyntaxNode): string {
  return src.slice(node.from, node.to);
}

function unquote(s: string): string {
  try {
    return JSON.parse(s) as string;
  } catch {
    return s.replace(/^"|"$/g, "");
  }
}

/** The property names of an Object node. */
function keysOf(src: string, obj: SyntaxNode | null): string[] {
  const out: string[] = [];
  for (let c = obj?.firstChild; c; c = c.nextSibling) {
    if (c.name !== "Property") continue;
    const name = c.getChild("PropertyName");
    if (name) out.push(unquote(text(src, name)));
  }
  return out;
}

function propertyValue(src: string, obj: SyntaxNode | null, key: string): SyntaxNode | null {
  for (let c = obj?.firstChild; c; c = c.nextSibling) {
    if (c.name !== "Property") continue;
    const name = c.getChild("PropertyName");
    if (name && unquote(text(src, name)) === key) return name.nextSibling?.name === ":" ? name.nextSibling.nextSibling : (c.lastChild ?? null);
  }
  return null;
}

/** The names of the properties enclosing `node`, outermost first. */
function pathOf(src: string, node: SyntaxNode | null): string[] {
  const path: string[] = [];
  for (let n = node; n; n = n.parent) {
    if (n.name === "Property") {
      const name = n.getChild("PropertyName");
      if (name) path.unshift(unquote(text(src, name)));
    } else if (n.name === "Array") {
      path.unshift("*");
    }
  }
  return path;
}

function stateDef(schema: DslSchema, type: string) {
  return Object.values(schema.$defs ?? {}).find((d) => d.properties?.type?.const === type);
}

/** Suggestions at `pos` of `src`, and where the word they replace starts. */
export function suggestAt(src: string, pos: number, schema: DslSchema, tree: Tree = jsonLanguage.parser.parse(src)): { from: number; options: Suggestion[] } | null {
  const node = tree.resolveInner(pos, -1);
  const inString = node.name === "String" || node.name === "PropertyName";
  const from = inString ? node.from + 1 : pos;
  const prop = node.parent?.name === "Property" ? node.parent : null;
  const isKey = node.name === "PropertyName" || (node.name === "Object" && !inString) || node.name === "{" || node.name === ",";
  const objectNode = node.name === "PropertyName" ? (prop?.parent ?? null) : node.name === "Object" ? node : node.parent?.name === "Object" ? node.parent : null;

  if (isKey && objectNode) {
    const path = pathOf(src, objectNode);
    const present = new Set(keysOf(src, objectNode));
    let keys: Record<string, { description?: string }> | undefined;
    if (path.length === 0) keys = schema.properties;
    else if (path[path.length - 2] === "states") {
      const type = propertyValue(src, objectNode, "type");
      keys = type ? stateDef(schema, unquote(text(src, type)))?.properties : { type: { description: "the state's type" } };
    }
    if (!keys) return null;
    const options = Object.entries(keys)
      .filter(([k]) => !present.has(k) || (node.name === "PropertyName" && unquote(text(src, node)) === k))
      .map(([k, v]) => ({ label: k, detail: v.description, kind: "property" as const }));
    return { from, options };
  }

  if (node.name === "String" && prop) {
    const key = unquote(text(src, prop.getChild("PropertyName")!));
    const path = pathOf(src, prop);
    if (key === "type" && path[path.length - 3] === "states") return { from, options: STATE_TYPES.map((t) => ({ label: t, kind: "type" as const })) };
    if (TRANSITIONS.has(key)) {
      // the `states` object of the scope this transition belongs to
      let scope: SyntaxNode | null = prop.parent;
      if (key !== "entry") {
        for (let n: SyntaxNode | null = prop.parent; n; n = n.parent) {
          if (n.name === "Property" && unquote(text(src, n.getChild("PropertyName")!)) === "states") {
            scope = n.parent;
            break;
          }
        }
      }
      const names = keysOf(src, propertyValue(src, scope, "states"));
      return { from, options: names.map((n) => ({ label: n, kind: "state" as const })) };
    }
  }
  return null;
}
