"""studio_dist/ is the committed build of studio/: it must be fresh, complete and served safely."""

from __future__ import annotations

import re

from studio_node import DIST, STUDIO, source_hash


def test_studio_dist_is_built_from_the_current_sources():
    stored = (DIST / ".source-hash").read_text().strip()
    assert stored == source_hash(), "studio_dist/ is stale against studio/: run `make studio` and commit studio_dist/"


def test_index_references_only_built_local_assets():
    html = (DIST / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs, "index.html loads nothing"
    for ref in refs:
        if ref.startswith("data:"):
            continue
        assert ref.startswith("/assets/"), f"{ref} is not a local hashed asset"
        assert (DIST / ref.lstrip("/")).is_file(), f"{ref} is missing from studio_dist"
    assert "<script>" not in html, "inline scripts are blocked by the CSP"
    assert "http://" not in html and "https://" not in html


def test_bundle_loads_nothing_from_outside_and_stays_small():
    import gzip

    total = 0
    for path in (DIST / "assets").iterdir():
        data = path.read_bytes()
        total += len(gzip.compress(data, 9))
        if path.suffix in (".js", ".css"):
            text = data.decode("utf-8", "replace")
            assert not re.search(r"""(?:import\s*\(|from\s*|url\()\s*["']?https?://""", text), (
                f"{path.name} loads from outside"
            )
            assert "fonts.googleapis" not in text
    assert total <= 1_500_000, f"bundle is {total} bytes gzipped (target 1.5 MB)"


def test_sources_have_no_inline_event_handlers_in_html():
    html = (STUDIO / "index.html").read_text()
    assert not re.search(r"\son[a-z]+=", html)


def test_server_serves_the_studio_with_csp_and_caching(server):
    import httpx

    root = httpx.get(server.url + "/", timeout=30)
    assert root.status_code == 200
    assert 'id="root"' in root.text
    csp = root.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert root.headers["cache-control"] == "no-cache"
    asset = re.search(r'src="(/assets/[^"]+\.js)"', root.text).group(1)
    js = httpx.get(server.url + asset, timeout=30)
    assert js.status_code == 200
    assert "immutable" in js.headers["cache-control"]
    # a deep link is the SPA (the router runs in the browser), an unknown asset is a 404
    deep = httpx.get(server.url + "/workflows/order-processing", timeout=30)
    assert deep.status_code == 200 and 'id="root"' in deep.text
    assert httpx.get(server.url + "/assets/missing-file.js", timeout=30).status_code == 404
