import { describe, expect, it } from "vitest";
import { identity, type WhoAmI } from "../src/api/session";

const base: WhoAmI = { key_id: "key_0123456789abcdef", tenant: "acme", role: "admin", cross_tenant: false, version: "1.0" };

describe("who the header says is signed in", () => {
  it("an API key: its prefix (never the key), tenant and role — with the old whoami shape", () => {
    const me = identity(base, "aio_AbCdEfGhIjKlMnOp");
    expect(me).toMatchObject({ kind: "key", name: "aio_AbCdEf…", tenant: "acme", role: "admin" });
    expect(JSON.stringify(me)).not.toContain("GhIjKlMnOp");
    expect(me.details).toContainEqual(["key id", "key_0123456789abcdef"]);
  });

  it("an API key with the new shape (user_id null, source key); a token exchanged for a key shows the key id", () => {
    const who = { ...base, user_id: null, groups: [], source: "key", cross_tenant: true };
    expect(identity(who, "aio_AbCdEfGhIj").details).toContainEqual(["scope", "cross-tenant admin"]);
    const token = identity({ ...who, source: "token" }, "eyJ.x.y");
    expect(token).toMatchObject({ kind: "key", name: "key_0123456789abcdef" });
    expect(token.details.map(([k]) => k)).toContain("signed in with");
  });

  it("a user session (OIDC or local): the user's name from the sign-in, groups when the server sends them", () => {
    const old = identity({ ...base, key_id: "usr_1", user: "ada" }, "eyJ.a.b");
    expect(old).toMatchObject({ kind: "user", name: "ada", tenant: "acme", role: "admin" });
    const fresh = identity({ ...base, key_id: "usr_1", user: "ada", user_id: "usr_1", groups: ["ops", "billing"], source: "token" }, "eyJ.a.b");
    expect(fresh.details).toContainEqual(["groups", "ops, billing"]);
    expect(fresh.details).toContainEqual(["user id", "usr_1"]);
    // no name kept from the sign-in (e.g. another tab's token): the user id
    expect(identity({ ...base, user_id: "usr_9", source: "token" }, "eyJ.a.b")).toMatchObject({ kind: "user", name: "usr_9" });
  });
});
