"""The few HTML pages served beside the Gradio app: login / sign-up, and a shared artifact."""
from __future__ import annotations

import html
import json
import urllib.parse

STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f6f9;color:#222;margin:0}
main{max-width:760px;margin:40px auto;background:#fff;padding:28px 36px;border-radius:12px;
box-shadow:0 1px 4px #0002}
h1{margin-top:0}form{display:flex;flex-direction:column;gap:8px;margin:12px 0 24px}
input{padding:8px;font-size:15px;border:1px solid #bbb;border-radius:6px}
button,.button{padding:9px 14px;font-size:15px;border:0;border-radius:6px;background:#4f46e5;color:#fff;
cursor:pointer;text-decoration:none;display:inline-block;text-align:center}
.secondary{background:#e5e7eb;color:#222}.error{background:#fee2e2;color:#991b1b;padding:10px;border-radius:6px}
.columns{display:flex;gap:32px}.columns>section{flex:1}img{max-width:100%;border-radius:8px}
pre{background:#f3f4f6;padding:10px;border-radius:6px;white-space:pre-wrap}
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{STYLE}</style>"
            f"</head><body><main>{body}</main></body></html>")


def login_page(error: str = "", providers: tuple[tuple[str, str], ...] = (), guest: bool = False,
               after: str = "/") -> str:
    """Log in and sign up forms, one "Log in with ..." button per (name, label) provider. `after` (a
    local path, checked by the caller) is where each of them, and "Go on as a guest", leads back to."""
    shown_error = f"<p class='error' id='login-error'>{html.escape(error)}</p>" if error else ""
    back = html.escape(after, quote=True)
    carried = f"<input type='hidden' name='next' value='{back}'>"
    to_provider = "?" + urllib.parse.urlencode({"next": after}) if after != "/" else ""
    buttons = "".join(f"<a class='button secondary' id='login-{html.escape(name)}' "
                      f"href='/login/{html.escape(name)}{html.escape(to_provider, quote=True)}'>"
                      f"Log in with {html.escape(label)}</a> "
                      for name, label in providers)
    keep = "<p>What you made as a guest, and your credits, move to the new account.</p>" if guest else ""
    return _page("Atelier: log in", f"""
<h1>Atelier</h1>{shown_error}
<div class='columns'>
<section><h2>Log in</h2>
<form method='post' action='/login' id='login-form'>
{carried}
<input name='email' type='email' placeholder='Email' required autocomplete='username'>
<input name='password' type='password' placeholder='Password' required autocomplete='current-password'>
<button type='submit' id='login-submit'>Log in</button></form>
{buttons}</section>
<section><h2>Sign up</h2>
<form method='post' action='/signup' id='signup-form'>
{carried}
<input name='email' type='email' placeholder='Email' required autocomplete='username'>
<input name='password' type='password' placeholder='Password (8 characters or more)' required minlength='8'
 autocomplete='new-password'>
<button type='submit' id='signup-submit'>Create account</button></form>{keep}
<p><a href='{back}' id='login-as-guest'>Go on as a guest</a></p></section></div>""")


def share_page(token: str, artifacts: list[dict], recipe: dict | None) -> str:
    """A shared set of artifacts: each {"artifact_id", "mime"}; the recipe (prompt, model, ...) if shown."""
    shown = []
    for a in artifacts:
        url = f"/share/{html.escape(token)}/file/{html.escape(a['artifact_id'])}"
        if a["mime"].startswith("video/"):
            shown.append(f"<video controls src='{url}' style='max-width:100%'></video>")
        else:
            shown.append(f"<a href='{url}'><img src='{url}' alt='shared image'></a>")
    details = (f"<h2>Recipe</h2><pre id='share-recipe'>{html.escape(json.dumps(recipe, indent=2))}</pre>"
               if recipe else "")
    return _page("Atelier: shared", f"""
<h1>Made with Atelier</h1><div id='share-items'>{''.join(shown) or '<p>Nothing is shared here any more.</p>'}</div>
{details}<p><a class='button' id='make-your-own' href='/'>Make your own</a></p>""")


def not_found_page() -> str:
    return _page("Atelier: not found", "<h1>Not found</h1><p>This link does not exist or was revoked.</p>"
                 "<p><a class='button' href='/'>Open Atelier</a></p>")
