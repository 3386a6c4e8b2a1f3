/** What a task can call: connector kinds (with their operations' JSON Schemas), saved actions
 * and functions, loaded once per editor; a service that is not there contributes nothing. */
import { useEffect, useState } from "react";
import { api } from "../api/client";

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  anyOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

export interface Operation {
  name: string;
  description?: string;
  parameters?: JsonSchema;
}

export interface ConnectorKind {
  kind: string;
  title?: string;
  default_operation?: string;
  operations?: Operation[];
}

export interface Catalog {
  kinds: ConnectorKind[];
  actions: { name: string; trn?: string; kind?: string }[];
  functions: { name: string; trn?: string }[];
}

function items<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  const d = data as { items?: T[]; connectors?: T[] } | null;
  return d?.items ?? d?.connectors ?? [];
}

let cached: Promise<Catalog> | null = null;

export function loadCatalog(): Promise<Catalog> {
  cached ??= Promise.all([
    api.get("/api/v1/connectors").then(items<ConnectorKind>, () => []),
    api.get("/api/v1/actions", { limit: 500 }).then(items<{ name: string; trn?: string; kind?: string }>, () => []),
    api.get("/api/v1/functions", { limit: 500 }).then(items<{ name: string; trn?: string }>, () => []),
  ]).then(([kinds, actions, functions]) => ({ kinds, actions, functions }));
  return cached;
}

export function useCatalog(): Catalog {
  const [catalog, setCatalog] = useState<Catalog>({ kinds: [], actions: [], functions: [] });
  useEffect(() => {
    let live = true;
    void loadCatalog().then((c) => live && setCatalog(c));
    return () => {
      live = false;
    };
  }, []);
  return catalog;
}

/** The operation schema for a task's action and parameters, when the action is a connector kind. */
export function operationFor(catalog: Catalog, action: string | undefined, parameters: unknown): Operation | undefined {
  const kind = catalog.kinds.find((k) => k.kind === action);
  if (!kind?.operations?.length) return undefined;
  const op = (parameters as { operation?: string } | null)?.operation ?? kind.default_operation;
  return kind.operations.find((o) => o.name === op) ?? kind.operations[0];
}

export function resolveSchema(root: JsonSchema | undefined, s: JsonSchema): JsonSchema {
  if (s.$ref && root?.$defs) {
    const name = s.$ref.split("/").pop()!;
    return root.$defs[name] ?? s;
  }
  if (s.anyOf) return s.anyOf.find((a) => a.type !== "null") ?? s;
  return s;
}
