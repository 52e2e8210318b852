"""The studio's keyboard shortcuts, the habits of AUTOMATIC1111 and Fooocus:

- Ctrl+Enter (Cmd+Enter on a Mac) in a prompt or negative prompt box clicks that tab's Generate button;
- Escape clicks the Cancel button of the tab on screen (a job that is not running is left alone: Cancel
  does nothing then).

`SCRIPT` is a JavaScript function for `Blocks.load(js=...)`: it runs once in each page the browser loads
(Gradio 6 takes `js`/`head` only in `launch()` or `mount_gradio_app`, so a load event keeps the script
with the UI that needs it, whichever way the app is served). It finds buttons by the elem_ids every
generating tab gives them: a prompt box PREFIX-prompt or PREFIX-negative belongs to the buttons
PREFIX-generate and PREFIX-cancel (`ui.generate.action_buttons`); a text box without such an id
(a tab's own prompt) uses the Generate button shown in its tab panel.
"""
from __future__ import annotations

SCRIPT = r"""
() => {
    if (window.atelierShortcuts) return;        // one listener, however often the page's load event runs
    window.atelierShortcuts = true;
    const shown = (element) => element && element.offsetParent !== null && !element.disabled;
    const generateFor = (box) => {
        const owner = box.closest('[id$="-prompt"], [id$="-negative"]');
        if (owner) {
            const prefix = owner.id.replace(/-(prompt|negative)$/, "");
            const button = document.getElementById(prefix + "-generate");
            if (shown(button)) return button;
        }
        const panel = box.closest('[role="tabpanel"]');
        return panel ? [...panel.querySelectorAll('button[id$="-generate"]')].find(shown) : null;
    };
    document.addEventListener("keydown", (event) => {
        if (event.defaultPrevented || event.isComposing) return;
        const box = event.target;
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
            if (!box || !box.matches || !box.matches("textarea, input[type=text]")) return;
            const button = generateFor(box);
            if (!button) return;
            event.preventDefault();      // no new line in the prompt
            button.click();
        } else if (event.key === "Escape" && !event.ctrlKey && !event.metaKey && !event.altKey) {
            // An open dialog takes Escape for itself: it closes, and the job goes on.
            if ([...document.querySelectorAll('[role="dialog"]')].some(shown)) return;
            const cancel = [...document.querySelectorAll('button[id$="-cancel"]')].find(shown);
            if (cancel) cancel.click();
        }
    });
}
"""
