"""Composes the tabs and the API endpoints into one gr.Blocks."""
from __future__ import annotations

import gradio as gr

from ui import (account_tab, admin_tab, advanced_tab, api, edit_tab, gallery_tab, img2img_tab, inpaint_tab,
                outpaint_tab, png_info_tab, simple_tab, upscale_tab, video_tab)
from ui.common import UIContext
from ui.controls import offered_sampling
from ui.shortcuts import SCRIPT as SHORTCUTS


# The tabs that work on a picture, in the order they are shown: (tab id, label, module).
EDITING_TABS = (("img2img", "Img2img", img2img_tab), ("edit", "Edit", edit_tab), ("inpaint", "Inpaint", inpaint_tab),
                ("outpaint", "Outpaint", outpaint_tab), ("upscale", "Upscale", upscale_tab))


def build_ui(ctx: UIContext) -> gr.Blocks:
    with gr.Blocks(title="Atelier") as demo:
        gr.Markdown("# Atelier")
        accounts_mode = ctx.account is not None and ctx.account.accounts_mode
        session_links = account_tab.session_bar() if accounts_mode else None
        with gr.Tabs() as tabs:
            with gr.Tab("Simple", id="simple") as simple_page:
                simple_tab.build(ctx, price_on=(demo.load, simple_page.select))
            with gr.Tab("Advanced", id="advanced") as advanced_page:
                advanced = advanced_tab.build(ctx, price_on=(advanced_page.select,))
            # Each editing tab's handles by tab id: its picture and settings (spec name -> control) are what
            # the Gallery's Send to fills.
            editing = {}
            for tab_id, label, tab in EDITING_TABS:
                with gr.Tab(label, id=tab_id) as page:
                    editing[tab_id] = tab.build(ctx, price_on=(page.select,))
            with gr.Tab("Video", id="video") as video_page:
                video = video_tab.build(ctx, price_on=(video_page.select,))
            with gr.Tab("Gallery", id="gallery") as gallery_page:
                send_to = {name: (name, tab["image"], tab["settings"]) for name, tab in editing.items()}
                gallery = gallery_tab.build(ctx, advanced, tabs, "advanced", send_to, video=("video", video))
            with gr.Tab("PNG Info", id="png_info"):
                offered = offered_sampling(ctx)
                img2img, inpaint = editing["img2img"], editing["inpaint"]
                png_info_tab.build(ctx, tabs, {
                    "txt2img": png_info_tab.Target("advanced", advanced, offered=offered),
                    "img2img": png_info_tab.Target("img2img", img2img["settings"], img2img["image"], offered),
                    "inpaint": png_info_tab.Target("inpaint", inpaint["settings"], inpaint["image"], offered)})
            if ctx.account is not None:
                with gr.Tab("Account", id="account") as account_page:
                    account = account_tab.build(ctx)
                with gr.Tab("Admin", id="admin", visible=not accounts_mode) as admin_page:  # admins: on_arrival
                    admin = admin_tab.build(ctx)
        gallery_page.select(gallery["load"], gallery["inputs"], gallery["outputs"], api_visibility="private")
        if ctx.account is not None:
            account_page.select(account["load"], None, account["outputs"], api_visibility="private")
            admin_page.select(admin["load"], admin["inputs"], admin["outputs"], api_visibility="private")
        if session_links is not None:
            demo.load(account_tab.on_arrival(ctx, tabs, admin_page), None, [session_links, admin_page, tabs],
                      api_visibility="private")
        demo.load(None, None, None, js=SHORTCUTS, api_visibility="private")     # Ctrl+Enter, Escape
        api.build(ctx)
    return demo
