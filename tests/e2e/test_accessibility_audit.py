"""The audit every browser test runs is axe-core itself: a page with a violation axe knows, and
our stricter checks pass nothing a page with our CSP would need to break."""

from __future__ import annotations

import pytest
from stack import audit_accessibility, chromium

BROKEN = """<!doctype html><html lang="zh-CN"><head><title>t</title>
<meta http-equiv="Content-Security-Policy" content="script-src 'self'"></head>
<body><main><h1>核验</h1><input id="code"><button></button></main></body></html>"""
SOUND = """<!doctype html><html lang="zh-CN"><head><title>核验</title>
<meta http-equiv="Content-Security-Policy" content="script-src 'self'"></head>
<body><main><h1>核验</h1><label for="code">核验码</label><input id="code"><button>核验</button></main></body></html>"""


def test_axe_core_finds_an_unlabelled_field_on_a_page_whose_csp_forbids_inline_scripts() -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(BROKEN)
        with pytest.raises(AssertionError, match=r"axe-core: .*(label|button-name)"):
            audit_accessibility(page)
        page.set_content(SOUND)
        audit_accessibility(page)
