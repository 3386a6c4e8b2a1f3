"""`aio lsp` itself: how it says to install the language server when pygls is missing, and the
pointer → line/column mapping in its corner cases (UTF-16 columns, quoted keys, escapes)."""

from __future__ import annotations

import subprocess
import sys

from aionix.lsp.analysis import Document, diagnostics


def test_aio_lsp_without_pygls_says_how_to_install_it():
    code = "import sys; sys.modules['pygls'] = None; from aionix.cli.main import run; sys.exit(run(['lsp']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'aionix[lsp]'" in proc.stderr and "Traceback" not in proc.stderr


def test_aio_lsp_is_in_the_help():
    proc = subprocess.run(
        [sys.executable, "-m", "aionix.cli.main", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "lsp" in proc.stdout


def test_columns_are_utf16_code_units_and_quoted_keys_map_back():
    # 😀 is two UTF-16 code units: the bad reference after it starts at column 2 + len('", next: ')…
    text = 'entry: A\nstates:\n  "A":\n    type: set\n    comment: "😀"\n    next: "Ghost"\n'
    diag = next(d for d in diagnostics(Document("file:///t/u.flow.yaml", text)) if "Ghost" in d.message)
    assert (diag.start, diag.end) == ((5, 10), (5, 17))
    text = 'entry: A\nstates:\n  A: {type: set, comment: "😀", next: Ghost}\n'
    diag = next(d for d in diagnostics(Document("file:///t/v.flow.yaml", text)) if "Ghost" in d.message)
    line = text.splitlines()[2]
    col = len(line[: line.index("Ghost")].encode("utf-16-le")) // 2
    assert (diag.start, diag.end) == ((2, col), (2, col + 5)) and col == line.index("Ghost") + 1


def test_an_expression_with_escapes_still_points_at_its_string():
    text = '{"entry": "A", "states": {"A": {"type": "set", "value": "{% \\"x\\" & ( %}", "end": true}}}'
    diag = next(d for d in diagnostics(Document("file:///t/e.flow.json", text)) if "JSONata" in d.message)
    start = text.index('"{%')
    assert diag.start == (0, start) and diag.end[1] > start
