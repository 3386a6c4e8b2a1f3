"""The JSONPath subset Amazon States Language allows, evaluated as Step Functions does.

Step Functions uses Jayway JsonPath: a *definite* path (names and single indexes only) gives one
value or fails with "No results for path"; an *indefinite* path (wildcards, slices, index
lists, deep scan, filters) gives a list of every match, possibly empty. Paths are parsed once
(cached) into a list of segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class PathError(Exception):
    """A path that does not parse or does not resolve; `message` is Step Functions' wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # name | index | wild | slice | names | indexes | deep | filter
    value: Any = None


@dataclass(frozen=True, slots=True)
class Path:
    source: str
    root: str  # "$" (data), "$$" (context) or a variable name
    segments: tuple[Segment, ...]
    definite: bool

    def normalized(self, upto: int | None = None) -> str:
        out = "$"
        for seg in self.segments[:upto]:
            if seg.kind == "name":
                out += f"['{seg.value}']"
            elif seg.kind == "index":
                out += f"[{seg.value}]"
            elif seg.kind == "wild":
                out += "[*]"
            else:
                out += "[...]"
        return out


_NAME_RE = re.compile(r"[^.\[\]()\s]+")


@lru_cache(maxsize=4096)
def parse(source: str) -> Path:
    """Parse `$…`, `$$…` or `$var…`; raise `PathError` on bad syntax."""
    s = source.strip()
    if not s.startswith("$"):
        raise PathError(f"Invalid JSONPath '{source}': it must begin with '$'")
    if s.startswith("$$"):
        root, i = "$$", 2
    else:
        m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", s)
        if m:
            root, i = m.group(1), m.end()
        else:
            root, i = "$", 1
    segments: list[Segment] = []
    n = len(s)
    while i < n:
        c = s[i]
        if s.startswith("..", i):
            i += 2
            if i < n and s[i] == "*":
                segments.append(Segment("deep", None))
                i += 1
                continue
            if i < n and s[i] == "[":
                segments.append(Segment("deep", None))
                continue
            m = _NAME_RE.match(s, i)
            if not m:
                raise PathError(f"Invalid JSONPath '{source}'")
            segments.append(Segment("deep", m.group(0)))
            i = m.end()
        elif c == ".":
            i += 1
            if i < n and s[i] == "*":
                segments.append(Segment("wild"))
                i += 1
                continue
            m = _NAME_RE.match(s, i)
            if not m:
                raise PathError(f"Invalid JSONPath '{source}'")
            name = m.group(0)
            i = m.end()
            if name == "length" and s.startswith("()", i):
                segments.append(Segment("length"))
                i += 2
                continue
            segments.append(Segment("name", name))
        elif c == "[":
            seg, i = _bracket(s, i + 1, source)
            segments.append(seg)
        else:
            raise PathError(f"Invalid JSONPath '{source}'")
    definite = all(seg.kind in ("name", "index", "length") for seg in segments)
    return Path(source, root, tuple(segments), definite)


def _bracket(s: str, i: int, source: str) -> tuple[Segment, int]:
    end = _closing(s, i, source)
    body = s[i:end].strip()
    nxt = end + 1
    if body == "*":
        return Segment("wild"), nxt
    if body.startswith("?"):
        inner = body[1:].strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        return Segment("filter", _Filter.parse(inner, source)), nxt
    if body.startswith(("'", '"')):
        names = [_unquote(p.strip(), source) for p in _split_top(body, ",")]
        if len(names) == 1:
            return Segment("name", names[0]), nxt
        return Segment("names", tuple(names)), nxt
    if ":" in body:
        parts = [p.strip() for p in body.split(":")]
        try:
            nums = tuple(int(p) if p else None for p in parts)
        except ValueError:
            raise PathError(f"Invalid JSONPath '{source}'") from None
        return Segment("slice", nums), nxt
    try:
        idx = [int(p.strip()) for p in body.split(",")]
    except ValueError:
        raise PathError(f"Invalid JSONPath '{source}'") from None
    if len(idx) == 1:
        return Segment("index", idx[0]), nxt
    return Segment("indexes", tuple(idx)), nxt


def _closing(s: str, i: int, source: str) -> int:
    depth, quote = 0, None
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in ")":
            depth -= 1
        elif c == "]":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise PathError(f"Invalid JSONPath '{source}'")


def _split_top(body: str, sep: str) -> list[str]:
    out, cur, quote = [], "", None
    for c in body:
        if quote:
            cur += c
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur += c
        elif c == sep:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def _unquote(text: str, source: str) -> str:
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "'\"":
        raise PathError(f"Invalid JSONPath '{source}'")
    quote = text[0]
    # Jayway unescapes only the quote that delimits the name; other backslashes stay
    return text[1:-1].replace("\\" + quote, quote)


# ---------------------------------------------------------------- filters
_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|<=|>=|<|>|=~|&&|\|\||!)|(?P<lp>\()|(?P<rp>\))"
    r"|(?P<at>@(?:\.[A-Za-z0-9_\-]+|\[[^\]]*\])*)|(?P<root>\$(?:\.[A-Za-z0-9_\-]+|\[[^\]]*\])*)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<kw>true|false|null))"
)


class _Filter:
    """`[?(@.price < 10 && @.tag == 'x')]` as a small expression tree."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    @classmethod
    def parse(cls, text: str, source: str) -> _Filter:
        tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _FILTER_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise PathError(f"Invalid JSONPath '{source}'")
            kind = m.lastgroup or ""
            tokens.append((kind, m.group(kind).strip()))
            pos = m.end()
        parser = _FilterParser(tokens, source)
        tree = parser.or_()
        if parser.i != len(tokens):
            raise PathError(f"Invalid JSONPath '{source}'")
        return cls(tree)

    def matches(self, item: Any, root: Any) -> bool:
        return bool(_truthy(_feval(self.tree, item, root)))


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]], source: str) -> None:
        self.tokens, self.i, self.source = tokens, 0, source

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise PathError(f"Invalid JSONPath '{self.source}'")
        self.i += 1
        return tok

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            left = ("or", left, self.and_())
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            left = ("and", left, self.cmp())
        return left

    def cmp(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">=", "=~"):
            self.take()
            return ("cmp", tok[1], left, self.unary())
        return left

    def unary(self) -> Any:
        kind, text = self.take()
        if kind == "op" and text == "!":
            return ("not", self.unary())
        if kind == "lp":
            inner = self.or_()
            if self.take()[0] != "rp":
                raise PathError(f"Invalid JSONPath '{self.source}'")
            return inner
        if kind == "at":
            return ("path", parse("$" + text[1:]), False)
        if kind == "root":
            return ("path", parse(text), True)
        if kind == "str":
            return ("lit", _unquote(text, self.source))
        if kind == "num":
            return ("lit", float(text) if any(c in text for c in ".eE") else int(text))
        if kind == "kw":
            return ("lit", {"true": True, "false": False, "null": None}[text])
        raise PathError(f"Invalid JSONPath '{self.source}'")


_MISSING = object()


def _feval(tree: Any, item: Any, root: Any) -> Any:
    op = tree[0]
    if op == "lit":
        return tree[1]
    if op == "path":
        try:
            return evaluate(tree[1], root if tree[2] else item)
        except PathError:
            return _MISSING
    if op == "not":
        return not _truthy(_feval(tree[1], item, root))
    if op == "and":
        return _truthy(_feval(tree[1], item, root)) and _truthy(_feval(tree[2], item, root))
    if op == "or":
        return _truthy(_feval(tree[1], item, root)) or _truthy(_feval(tree[2], item, root))
    a, b = _feval(tree[2], item, root), _feval(tree[3], item, root)
    if a is _MISSING or b is _MISSING:
        return tree[1] == "!=" and not (a is _MISSING and b is _MISSING)
    sym = tree[1]
    if sym == "==":
        return _same(a, b)
    if sym == "!=":
        return not _same(a, b)
    if sym == "=~":
        return isinstance(a, str) and isinstance(b, str) and re.search(b, a) is not None
    num = (int, float)
    comparable = (
        isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool)
    ) or (isinstance(a, str) and isinstance(b, str))
    if not comparable:
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[sym]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _truthy(v: Any) -> bool:
    return v is not _MISSING and v is not None and v is not False


# ---------------------------------------------------------------- evaluation
def evaluate(path: Path, data: Any) -> Any:
    """The value of a definite path (or `PathError`), or the list of matches of an indefinite one."""
    if path.definite:
        cur = data
        for n, seg in enumerate(path.segments):
            if seg.kind == "length":
                if isinstance(cur, (list, dict, str)):
                    cur = len(cur)
                    continue
                raise PathError(f"No results for path: {path.normalized(n + 1)}")
            if (seg.kind == "name" and isinstance(cur, dict) and seg.value in cur) or (
                seg.kind == "index" and isinstance(cur, list) and -len(cur) <= seg.value < len(cur)
            ):
                cur = cur[seg.value]
            else:
                raise PathError(f"No results for path: {path.normalized(n + 1)}")
        return cur
    nodes = [data]
    for seg in path.segments:
        nodes = _step(seg, nodes, data)
    return nodes


def _step(seg: Segment, nodes: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    kind = seg.kind
    for node in nodes:
        if kind == "name":
            if isinstance(node, dict) and seg.value in node:
                out.append(node[seg.value])
        elif kind == "names":
            if isinstance(node, dict):
                out.extend(node[k] for k in seg.value if k in node)
        elif kind == "index":
            if isinstance(node, list) and -len(node) <= seg.value < len(node):
                out.append(node[seg.value])
        elif kind == "indexes":
            if isinstance(node, list):
                out.extend(node[i] for i in seg.value if -len(node) <= i < len(node))
        elif kind == "wild":
            if isinstance(node, dict):
                out.extend(node.values())
            elif isinstance(node, list):
                out.extend(node)
        elif kind == "slice":
            if isinstance(node, list):
                start, stop, *rest = (*seg.value, None)
                step = rest[0] if rest and rest[0] else None
                out.extend(node[slice(start, stop, step)])
        elif kind == "filter":
            values = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
            out.extend(v for v in values if seg.value.matches(v, root))
        elif kind == "length":
            if isinstance(node, (list, dict, str)):
                out.append(len(node))
        elif kind == "deep":
            _deep(node, seg.value, out)
    return out


def _deep(node: Any, name: str | None, out: list[Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if name is None or k == name:
                out.append(v)
        for v in node.values():
            _deep(v, name, out)
    elif isinstance(node, list):
        for v in node:
            if name is None:
                out.append(v)
            _deep(v, name, out)


# ---------------------------------------------------------------- reference paths (ResultPath)
def assign(path_source: str, target: Any, value: Any) -> Any:
    """Put `value` at the reference path in a copy of `target` (ResultPath); `$` replaces all."""
    path = parse(path_source)
    if not path.segments:
        return value
    if path.root != "$" or not all(s.kind in ("name", "index") for s in path.segments):
        raise PathError(f"Invalid ResultPath '{path_source}': it must be a reference path")
    root = _copy_container(target, path.segments[0])
    cur = root
    for n, seg in enumerate(path.segments):
        last = n == len(path.segments) - 1
        if seg.kind == "name":
            if not isinstance(cur, dict):
                raise PathError(f"Invalid path '{path_source}'")
            if last:
                cur[seg.value] = value
            else:
                existing = cur.get(seg.value)
                if existing is not None and not isinstance(existing, (dict, list)):
                    raise PathError(
                        f"Invalid path '{path_source}': cannot set a field inside the value at "
                        f"{path.normalized(n + 1)}, which is not an object"
                    )
                cur[seg.value] = _copy_container(existing, path.segments[n + 1])
                cur = cur[seg.value]
        else:
            if not isinstance(cur, list) or not -len(cur) <= seg.value < len(cur):
                raise PathError(f"Invalid path '{path_source}'")
            if last:
                cur[seg.value] = value
            else:
                cur[seg.value] = _copy_container(cur[seg.value], path.segments[n + 1])
                cur = cur[seg.value]
    return root


def _copy_container(value: Any, seg: Segment) -> Any:
    if seg.kind == "name":
        return dict(value) if isinstance(value, dict) else {}
    return list(value) if isinstance(value, list) else value
