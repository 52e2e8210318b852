"""Composes the tabs and the API endpoints into one gr.Blocks."""
from __future__ import annotations

import gradio as gr

from ui import advanced_tab, api, gallery_tab, simple_tab
from ui.common import UIContext


def build_ui(ctx: UIContext) -> gr.Blocks:
    with gr.Blocks(title="Atelier") as demo:
        gr.Markdown("# Atelier")
        with gr.Tabs() as tabs:
            with gr.Tab("Simple", id="simple"):
                simple_tab.build(ctx)
            with gr.Tab("Advanced", id="advanced"):
                advanced = advanced_tab.build(ctx)
            with gr.Tab("Gallery", id="gallery") as gallery_page:
                gallery = gallery_tab.build(ctx, advanced, tabs, "advanced")
        gallery_page.select(gallery["load"], None, gallery["outputs"], api_visibility="private")
        api.build(ctx)
    return demo
