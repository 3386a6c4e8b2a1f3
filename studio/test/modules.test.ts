import { describe, expect, it } from "vitest";
import { permissionLines, sbomComponents, stateText } from "../src/api/modules";

describe("modules", () => {
  it("says what a verification state means, with the reasons", () => {
    expect(stateText({ state: "verified", reasons: [] })).toContain("runnable");
    expect(stateText({ state: "quarantined", reasons: ["signature: no trusted key", "sbom: missing"] })).toBe("quarantined: signature: no trusted key; sbom: missing");
    expect(stateText({ state: "approved", reasons: ["signature: none"] })).toContain("despite: signature: none");
  });

  it("lists permissions, default-deny network", () => {
    expect(permissionLines({ filesystem: "read-only", network: ["api.example.com"], secrets: ["TOKEN", "OPT?"] })).toEqual([
      "filesystem: read-only",
      "network: api.example.com",
      "secrets: TOKEN, OPT?",
    ]);
    expect(permissionLines({ network: "deny" })).toEqual(["filesystem: none", "network: deny", "secrets: none"]);
    expect(permissionLines(null)).toEqual(["none declared"]);
  });

  it("reads components from CycloneDX (the package itself first) and SPDX", () => {
    const cdx = {
      name: "summarize_text",
      sbom: {
        bomFormat: "CycloneDX",
        metadata: { component: { name: "summarize_text", version: "1.3.0", licenses: [{ license: { id: "Apache-2.0" } }] } },
        components: [{ name: "lib", version: "2", licenses: [{ expression: "MIT OR Apache-2.0" }] }],
      },
    };
    expect(sbomComponents(cdx)).toEqual([
      { name: "summarize_text", version: "1.3.0", license: "Apache-2.0" },
      { name: "lib", version: "2", license: "MIT OR Apache-2.0" },
    ]);
    expect(sbomComponents({ spdxVersion: "SPDX-2.3", packages: [{ name: "text_extract", versionInfo: "0.2.0", licenseConcluded: "MIT" }] })).toEqual([
      { name: "text_extract", version: "0.2.0", license: "MIT" },
    ]);
    expect(sbomComponents(null)).toEqual([]);
  });
});
