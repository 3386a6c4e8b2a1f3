// The fingerprint of everything that shapes studio_dist/: the build writes it to
// studio_dist/.source-hash, and tests/studio compares it so a stale build fails CI.
// Usage: node scripts/source-hash.mjs [--write | --check]
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const inputs = ["src", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json"];

function files(path) {
  const full = join(root, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).sort().flatMap((name) => files(join(path, name)));
}

export function sourceHash() {
  const hash = createHash("sha256");
  for (const file of inputs.flatMap(files).map((f) => f.split("\\").join("/")).sort()) {
    hash.update(file + "\0");
    hash.update(readFileSync(join(root, file)).toString("utf8").replace(/\r\n/g, "\n"));
    hash.update("\0");
  }
  return hash.digest("hex");
}

const target = join(root, "..", "studio_dist", ".source-hash");
const mode = process.argv[2];
if (mode === "--write") {
  writeFileSync(target, sourceHash() + "\n");
} else if (mode === "--check") {
  const stored = existsSync(target) ? readFileSync(target, "utf8").trim() : "(missing)";
  const now = sourceHash();
  if (stored !== now) {
    console.error(`studio_dist is stale: built from ${stored}, sources are ${now}; run make studio`);
    process.exit(1);
  }
  console.log("studio_dist is fresh");
} else {
  console.log(sourceHash());
}
