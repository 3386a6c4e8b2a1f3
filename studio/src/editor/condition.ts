/** The router's condition builder: one comparison as three fields, read back from and written
 * to a `{% left op right %}` expression. */

export const OPERATORS = ["=", "!=", ">", ">=", "<", "<=", "in"] as const;

/** Build `{% input.x > 100 %}` from three fields, or read one back when it has that shape. */
export function buildCondition(left: string, op: string, right: string): string {
  return `{% ${left.trim()} ${op} ${right.trim()} %}`;
}

export function parseCondition(condition: unknown): { left: string; op: string; right: string } | null {
  if (typeof condition !== "string") return null;
  const m = /^\{%\s*([A-Za-z_$][\w.$[\]"']*)\s*(=|!=|>=|<=|>|<|in)\s*(.+?)\s*%\}$/.exec(condition);
  // the right side is one value (a number, a string, a path, a list): `1 and input.b` is not
  if (!m || !/^("[^"]*"|'[^']*'|-?[\w.$]+(\[[^\]]*\])*|\[[^\]]*\])$/.test(m[3])) return null;
  return { left: m[1], op: m[2], right: m[3] };
}

export const BUILDER_LIMIT =
  "The condition builder edits one comparison (a value, an operator, a value); this condition is more than that, so it stays an expression here.";

/** How a route's condition can be edited: in the builder (one comparison, or nothing yet: an
 * empty condition or a new edge's `{% true %}`), or only as an expression. */
export function conditionMode(condition: unknown): "builder" | "blank" | "expression" {
  if (parseCondition(condition)) return "builder";
  if (condition === undefined || condition === null || condition === "" || (typeof condition === "string" && /^\{%\s*(true)?\s*%\}$/.test(condition))) return "blank";
  return "expression";
}

