/** Agent modules (issue 20): what the Modules page shows of an installed package. */

export interface ModuleInfo {
  name: string;
  version: string;
  trn?: string;
  digest?: string;
  runtime?: string;
  state: "verified" | "approved" | "quarantined" | string;
  runnable?: boolean;
  reasons?: string[];
  signer?: string | null;
  sbom?: { format: string; digest: string } | null;
  intents?: string[];
  permissions?: { filesystem?: string; network?: string | string[]; secrets?: string[] } | null;
  policies?: Record<string, unknown> | null;
  source?: string;
  installed_at?: number;
  installed_by?: string | null;
  approved_at?: number | null;
  approved_by?: string | null;
  invocations?: { total?: number; failed?: number; [k: string]: unknown };
  breaker?: unknown;
  versions?: { version: string; state: string }[];
}

/** The verification state in words: what it means for running the module. */
export function stateText(m: Pick<ModuleInfo, "state" | "reasons">): string {
  const why = (m.reasons ?? []).join("; ");
  if (m.state === "verified") return "verified: signature and SBOM checked, runnable";
  if (m.state === "approved") return `approved by an admin despite: ${why || "no recorded reason"}`;
  if (m.state === "quarantined") return `quarantined: ${why || "no reason recorded"}`;
  return m.state;
}

/** The manifest's permissions as short lines ("network: deny", "secrets: A, B?"). */
export function permissionLines(p: ModuleInfo["permissions"]): string[] {
  if (!p) return ["none declared"];
  const net = p.network === undefined ? "deny" : Array.isArray(p.network) ? (p.network.length ? p.network.join(", ") : "deny") : String(p.network);
  return [`filesystem: ${p.filesystem ?? "none"}`, `network: ${net}`, `secrets: ${p.secrets?.length ? p.secrets.join(", ") : "none"}`];
}

/** The SBOM's components as rows (CycloneDX `components` or SPDX `packages`). */
export function sbomComponents(sbom: unknown): { name: string; version: string; license: string }[] {
  if (!sbom || typeof sbom !== "object") return [];
  const doc = ((sbom as { sbom?: unknown }).sbom ?? sbom) as Record<string, unknown>;
  const out: { name: string; version: string; license: string }[] = [];
  const meta = (doc.metadata as { component?: Record<string, unknown> } | undefined)?.component;
  const cdx = [...(meta ? [meta] : []), ...(Array.isArray(doc.components) ? doc.components : [])];
  if (cdx.length) {
    for (const c of cdx as Record<string, unknown>[]) {
      const lic = Array.isArray(c.licenses)
        ? (c.licenses as { license?: { id?: string; name?: string }; expression?: string }[]).map((l) => l.license?.id ?? l.license?.name ?? l.expression ?? "").filter(Boolean).join(", ")
        : "";
      out.push({ name: String(c.name ?? "?"), version: String(c.version ?? ""), license: lic });
    }
  }
  const spdx = doc.packages;
  if (Array.isArray(spdx)) {
    for (const p of spdx as Record<string, unknown>[]) {
      out.push({ name: String(p.name ?? "?"), version: String(p.versionInfo ?? ""), license: String(p.licenseConcluded ?? p.licenseDeclared ?? "") });
    }
  }
  return out;
}
