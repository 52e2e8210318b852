"""The page's own CSS, passed to Gradio once when the app is mounted (app.py).

Gradio's gallery draws every item in a square cell, filling it: a 256×256 picture in a one-item gallery
became 666×666 inside a 470 px box, its bottom third hidden, and a 16:9 one was letterboxed in a square.
A result gallery (`ui.generate.results_column`, class "atelier-result") instead sizes each picture to its
own aspect ratio, never larger than its pixels nor than the box, so it is always seen whole; clicking it
opens Gradio's preview, which zooms it to the whole panel.
"""

RESULT_CSS = """
.atelier-result .grid-container {
    grid-template-columns: repeat(auto-fit, minmax(min(100%, 120px), 1fr));
    align-items: start;
}
.atelier-result .thumbnail-item {
    aspect-ratio: auto;
    height: auto;
    display: flex;
    align-items: center;
    justify-content: center;
}
.atelier-result .thumbnail-item img {
    width: auto;
    height: auto;
    max-width: 100%;
    max-height: 400px;
    object-fit: contain;
}
"""

# The Gallery tab's grid and lineage strip (class "atelier-thumbs"): cells of one size however few items there are
# (Gradio stretches a lone item across the whole row), each picture whole inside its cell.
THUMBS_CSS = """
.atelier-thumbs .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(140px, 1fr));
}
.atelier-thumbs.atelier-lineage .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(130px, 1fr));
}
.atelier-thumbs .thumbnail-item img {
    object-fit: contain;
}
"""

CSS = RESULT_CSS + THUMBS_CSS
