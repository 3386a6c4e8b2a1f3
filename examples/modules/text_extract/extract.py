"""text_extract: plain text from HTML, Markdown or text. JSON on stdin, JSON on stdout
(standard library only: it runs under the host's python3, confined)."""

import json
import re
import sys
from html.parser import HTMLParser

BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript"):
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript") and self.skip:
            self.skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self.skip:
            self.parts.append(data)


def from_markdown(text: str) -> str:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}(#{1,6}|>|[-*+]|\d+\.)\s+", "", text, flags=re.M)
    return re.sub(r"(\*\*|__|\*|_|`)", "", text)


def main() -> None:
    event = json.load(sys.stdin)
    content = event["content"]
    fmt = event.get("format") or ("html" if re.search(r"<\w+[^>]*>", content) else "text")
    title = ""
    if fmt == "html":
        parser = Text()
        parser.feed(content)
        parser.close()
        text, title = "".join(parser.parts), parser.title.strip()
    elif fmt == "markdown":
        text = from_markdown(content)
    else:
        text = content
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line)
    json.dump({"text": text, "title": title, "format": fmt, "words": len(text.split()), "lines": text.count("\n") + 1 if text else 0}, sys.stdout)


if __name__ == "__main__":
    main()
