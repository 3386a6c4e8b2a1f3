/** A line diff (longest common subsequence) for the side-by-side version view. */
export interface DiffRow {
  left: string | null;
  right: string | null;
  kind: "same" | "removed" | "added" | "changed";
}

export function diffLines(a: string[], b: string[]): DiffRow[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const rows: DiffRow[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      rows.push({ left: a[i++], right: b[j++], kind: "same" });
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      rows.push({ left: a[i++], right: null, kind: "removed" });
    } else {
      rows.push({ left: null, right: b[j++], kind: "added" });
    }
  }
  // pair a run of removals with the additions that follow it as changes
  const out: DiffRow[] = [];
  for (let k = 0; k < rows.length; ) {
    if (rows[k].kind !== "removed") {
      out.push(rows[k++]);
      continue;
    }
    const removed: string[] = [];
    while (k < rows.length && rows[k].kind === "removed") removed.push(rows[k++].left!);
    const added: string[] = [];
    while (k < rows.length && rows[k].kind === "added") added.push(rows[k++].right!);
    for (let x = 0; x < Math.max(removed.length, added.length); x++) {
      const l = removed[x] ?? null;
      const r = added[x] ?? null;
      out.push({ left: l, right: r, kind: l !== null && r !== null ? "changed" : l !== null ? "removed" : "added" });
    }
  }
  return out;
}
