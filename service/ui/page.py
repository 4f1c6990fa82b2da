"""The HTML of the inspection page and of its key form, rendered on the server.

No template engine: two small documents built with `html.escape` on every value that
comes from data (user ids). The script (``static/ui.js``) fills the panels in.
"""

from __future__ import annotations

from html import escape

STATIC = "/ui/static"


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{STATIC}/ui.css">
</head>
<body>
{body}
<script src="{STATIC}/ui.js" defer></script>
</body>
</html>
"""


def inspection_page(users: list[str], user: str | None, model: str) -> str:
    """The page: a user picker (type an id or choose one), then four panels the script
    fills from /users/{id}/history and /recommend/stream."""
    options = "\n".join(f'<option value="{escape(u)}"></option>' for u in users)
    chosen = escape(user or "")
    return _document(
        "R2Rec inspection",
        f"""<header>
<h1>R2Rec <span>inspection</span></h1>
<p class="model">model <code>{escape(model)}</code></p>
</header>
<form id="ask" autocomplete="off">
<label>user <input id="user" name="user" list="users" value="{chosen}" required
  placeholder="type or pick an id" maxlength="256"></label>
<datalist id="users">
{options}
</datalist>
<label>k <input id="k" name="k" type="number" min="1" max="20" value="5"></label>
<label><input id="explain" name="explain" type="checkbox" checked> reason</label>
<button id="go" type="submit">Recommend</button>
<span id="status" role="status"></span>
</form>
<main>
<section id="history-panel"><h2>History <small>newest first</small></h2>
<ol id="history"></ol></section>
<section id="ranking-panel"><h2>Ranking</h2>
<ol id="ranking"></ol><p id="fallback" hidden></p></section>
<section id="thoughts-panel"><h2>Reasoning <small>as it arrives</small></h2>
<div id="thoughts"></div></section>
<section id="evidence-panel"><h2>Evidence <small>you &rarr; shared items &larr; neighbour
&rarr; next item</small></h2><div id="evidence"></div></section>
</main>""",
    )


def key_form(message: str | None = None) -> str:
    """Asked for when reads need a key and the browser has no session cookie yet."""
    return _document(
        "R2Rec inspection: key",
        f"""<header><h1>R2Rec <span>inspection</span></h1></header>
<form id="key-form" method="post" action="/ui/session">
<p>This service needs a read key. It is exchanged for a session cookie (HttpOnly,
SameSite=Strict, 12 hours); the key itself is not stored in the browser.</p>
<label>API key <input id="key" name="key" type="password" required></label>
<button type="submit">Open</button>
<p id="key-error" class="error" role="alert">{escape(message or "")}</p>
</form>""",
    )
