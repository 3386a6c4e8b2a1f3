import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** Every `aio …` command the Studio's hints name is a real command of the CLI reference. */
describe("CLI hints in the Studio", () => {
  const root = join(import.meta.dirname, "..", "src");
  const reference = readFileSync(join(import.meta.dirname, "..", "..", "docs", "cli.md"), "utf8");
  const commands = new Set([...reference.matchAll(/^#+ `(aio[^`]*)`$/gm)].map((m) => m[1]));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.tsx?$/.test(f)) files.push(p);
    }
  };
  walk(root);

  it("name commands that exist (the Connections page says `aio act conn create`)", () => {
    const named: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(f, "utf8").matchAll(/\baio((?: [a-z][a-z-]*)+)/g)) {
        // the longest prefix of the words that the reference knows is the command
        const words = m[1].trim().split(" ");
        let cmd = "aio";
        for (const w of words) {
          if (!commands.has(`${cmd} ${w}`)) break;
          cmd = `${cmd} ${w}`;
        }
        named.push(`${cmd} | ${m[0]}`);
        expect(cmd.split(" ").length, `${f}: "${m[0]}" names no command in docs/cli.md`).toBeGreaterThan(2);
      }
    }
    expect(named).toContain("aio act conn create | aio act conn create");
  });
});
