import assert from "node:assert/strict";
import { test } from "node:test";
import { serverCommand, which } from "../../src/lsp";

test("aio lsp when aio is on the PATH, with the URL and profile settings as global options", () => {
  const find = (n: string) => (n === "aio" ? "/usr/bin/aio" : undefined);
  assert.deepEqual(serverCommand({}, find), { command: "/usr/bin/aio", args: ["lsp"] });
  assert.deepEqual(serverCommand({ serverUrl: "http://h:1", profile: "prod" }, find), {
    command: "/usr/bin/aio",
    args: ["--url", "http://h:1", "--profile", "prod", "lsp"],
  });
});

test("the single binary's `aionix aio lsp` when only it is installed", () => {
  const find = (n: string) => (n === "aionix" ? "/opt/aionix" : undefined);
  assert.deepEqual(serverCommand({ profile: "p" }, find), { command: "/opt/aionix", args: ["aio", "--profile", "p", "lsp"] });
});

test("the lspCommand setting wins; nothing installed is a clear error", () => {
  assert.deepEqual(serverCommand({ lspCommand: ["python", "-m", "aionix.cli.main", "lsp"] }, () => undefined), {
    command: "python",
    args: ["-m", "aionix.cli.main", "lsp"],
  });
  assert.throws(() => serverCommand({}, () => undefined), /aionix\[lsp\]/);
});

test("which walks the PATH", () => {
  const seen: string[] = [];
  const found = which("aio", "/a:/b:/c", (f) => (seen.push(f), f === "/b/aio"));
  assert.equal(found, "/b/aio");
  assert.deepEqual(seen, ["/a/aio", "/b/aio"]);
});
