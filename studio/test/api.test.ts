import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { serverProblems } from "../src/api/workflows";

describe("API errors", () => {
  it("a route no service answers is 'unavailable'; a missing resource is not", () => {
    expect(new ApiError(404, "not_found", "no route for GET /api/v1/triggers", null).unavailable).toBe(true);
    expect(new ApiError(404, "not_found", "workflow 'x' not found", null).unavailable).toBe(false);
    expect(new ApiError(403, "forbidden", "no route for GET /x", null).unavailable).toBe(false);
  });
});

describe("server validation problems", () => {
  it("come from a validation report with pointers, warnings included", () => {
    const problems = serverProblems({
      valid: false,
      errors: [{ pointer: "/states/A/next", message: "unknown state 'Z'", severity: "error" }],
      warnings: [{ pointer: "/states/B/action", message: "function not found", severity: "warning" }],
    });
    expect(problems).toEqual([
      { pointer: "/states/A/next", message: "unknown state 'Z'", severity: "error", source: "server" },
      { pointer: "/states/B/action", message: "function not found", severity: "warning", source: "server" },
    ]);
  });

  it("come from a refused save, with the body's definition prefix removed", () => {
    const err = new ApiError(422, "validation_failed", "definition/states/A/routes: too short", [
      { field: "definition/states/A/routes", pointer: "/states/A/routes", message: "too short" },
      { field: "definition.entry", message: "missing" },
    ]);
    expect(serverProblems(err).map((p) => p.pointer)).toEqual(["/states/A/routes", "/entry"]);
  });
});
