"""The Studio's Vitest suite (graph ⇄ DSL round trips, transactions, layout) and type check."""

from __future__ import annotations

from studio_node import ensure_node_modules, run_node


def test_vitest_suite_passes():
    ensure_node_modules()
    proc = run_node(
        ["node_modules/vitest/vitest.mjs", "run", "--reporter=dot"], timeout=600, env={"CI": "1", "NO_COLOR": "1"}
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout


def test_typescript_compiles_cleanly():
    ensure_node_modules()
    proc = run_node(["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."], timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
