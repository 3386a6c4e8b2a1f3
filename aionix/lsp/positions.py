"""Position-tracking parses of YAML and JSON: every value (and every mapping key) with its range,
so that a JSON pointer from the validator maps back to a line and column in the file.

Ranges are (line, character) pairs, 0-based, with characters counted in UTF-16 code units as the
Language Server Protocol counts them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Pos = tuple[int, int]


@dataclass
class Node:
    kind: str  # "map", "seq" or "scalar"
    start: Pos
    end: Pos
    value: Any = None  # scalars: the Python value
    children: dict[str, Node] | list[Node] = field(default_factory=list)
    key_start: Pos | None = None  # a mapping value: where its key is
    key_end: Pos | None = None
    #: a scalar written on one line whose text is the value exactly (plain or quoted without
    #: escapes): character i of the value is at start + quote + i.
    verbatim: bool = False
    quote: int = 0

    def child(self, part: str) -> Node | None:
        if isinstance(self.children, dict):
            return self.children.get(part)
        if part.isdigit() and int(part) < len(self.children):
            return self.children[int(part)]
        return None


class ParseError(Exception):
    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def pointer_parts(pointer: str) -> list[str]:
    if pointer in ("", "/"):
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]


def find(root: Node, pointer: str) -> tuple[Node, bool]:
    """The node a pointer names, or its deepest existing ancestor (and False)."""
    node = root
    for part in pointer_parts(pointer):
        nxt = node.child(part)
        if nxt is None:
            return node, False
        node = nxt
    return node, True


def node_at(root: Node, pos: Pos) -> tuple[list[str | int], Node, bool]:
    """The path of the deepest node containing `pos`, that node, and whether `pos` is on its key."""
    path: list[str | int] = []
    node = root
    on_key = False
    while True:
        found = False
        items = node.children.items() if isinstance(node.children, dict) else enumerate(node.children)
        for part, child in items:
            if child.key_start is not None and child.key_start <= pos <= child.key_end:  # type: ignore[operator]
                path.append(part)
                return path, child, True
            if child.start <= pos <= child.end:
                path.append(part)
                node = child
                found = True
                break
        if not found:
            return path, node, on_key


class LineIndex:
    """Code-point offsets → UTF-16 (line, character)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", text)]

    def pos(self, offset: int) -> Pos:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        prefix = self.text[self.starts[lo] : offset]
        return lo, len(prefix.encode("utf-16-le")) // 2

    def offset(self, pos: Pos) -> int:
        line, char = pos
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[line]
        units = 0
        i = start
        while i < len(self.text) and units < char and self.text[i] not in "\r\n":
            units += 2 if ord(self.text[i]) > 0xFFFF else 1
            i += 1
        return i


# ------------------------------------------------------------------ YAML
def parse_yaml(text: str) -> tuple[Any, Node]:
    index = LineIndex(text)
    try:
        value = yaml.safe_load(text)
        composed = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = index.pos(mark.index) if mark is not None else (0, 0)
        raise ParseError(f"YAML: {exc.problem or exc.context}", pos) from None
    except yaml.YAMLError as exc:
        raise ParseError(f"YAML: {exc}", (0, 0)) from None
    if composed is None:
        return value, Node("scalar", (0, 0), (0, 0), None)
    return value, _yaml_node(composed, index, text)


def _yaml_node(node: yaml.Node, index: LineIndex, text: str) -> Node:
    start, end = index.pos(node.start_mark.index), index.pos(node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        out = Node("map", start, end, children={})
        for key, val in node.value:
            child = _yaml_node(val, index, text)
            child.key_start, child.key_end = index.pos(key.start_mark.index), index.pos(key.end_mark.index)
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            out.children[str(name)] = child  # type: ignore[index]
        return out
    if isinstance(node, yaml.SequenceNode):
        return Node("seq", start, end, children=[_yaml_node(v, index, text) for v in node.value])
    raw = text[node.start_mark.index : node.end_mark.index]
    out = Node("scalar", start, end, value=node.value)
    if node.style in (None, "") and raw == node.value and "\n" not in raw:
        out.verbatim = True
    elif node.style in ("'", '"') and raw[1:-1] == node.value and "\n" not in raw:
        out.verbatim, out.quote = True, 1
    return out


# ------------------------------------------------------------------ JSON
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"')


def parse_json(text: str) -> tuple[Any, Node]:
    index = LineIndex(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"JSON: {exc.msg}", index.pos(exc.pos)) from None
    node, _ = _JsonParser(text, index).value(_WS.match(text, 0).end())
    return value, node


class _JsonParser:
    """Only run on text that json.loads accepted: it records ranges, not errors."""

    def __init__(self, text: str, index: LineIndex) -> None:
        self.text, self.index = text, index

    def ws(self, i: int) -> int:
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def value(self, i: int) -> tuple[Node, int]:
        ch = self.text[i]
        if ch == "{":
            node = Node("map", self.index.pos(i), (0, 0), children={})
            i = self.ws(i + 1)
            while self.text[i] != "}":
                m = _STRING.match(self.text, i)
                assert m is not None
                key_start, key_end = self.index.pos(i), self.index.pos(m.end())
                key = json.loads(m.group())
                i = self.ws(m.end())
                i = self.ws(i + 1)  # ':'
                child, i = self.value(i)
                child.key_start, child.key_end = key_start, key_end
                node.children[key] = child  # type: ignore[index]
                i = self.ws(i)
                if self.text[i] == ",":
                    i = self.ws(i + 1)
            node.end = self.index.pos(i + 1)
            return node, i + 1
        if ch == "[":
            node = Node("seq", self.index.pos(i), (0, 0), children=[])
            i = self.ws(i + 1)
            while self.text[i] != "]":
                child, i = self.value(i)
                node.children.append(child)  # type: ignore[union-attr]
                i = self.ws(i)
                if self.text[i] == ",":
                    i = self.ws(i + 1)
            node.end = self.index.pos(i + 1)
            return node, i + 1
        if ch == '"':
            m = _STRING.match(self.text, i)
            assert m is not None
            raw = m.group()
            node = Node("scalar", self.index.pos(i), self.index.pos(m.end()), value=json.loads(raw))
            node.verbatim, node.quote = "\\" not in raw, 1
            return node, m.end()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, i):
                return Node("scalar", self.index.pos(i), self.index.pos(i + len(word)), value=val), i + len(word)
        m = _NUMBER.match(self.text, i)
        assert m is not None
        return Node("scalar", self.index.pos(i), self.index.pos(m.end()), value=json.loads(m.group())), m.end()


def parse(text: str, json_like: bool) -> tuple[Any, Node]:
    return parse_json(text) if json_like else parse_yaml(text)
