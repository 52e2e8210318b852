"""The Gradio Blocks UI: one module per tab, plus the named API endpoints. Never imports torch."""
from ui.app import build_ui
from ui.common import UIContext

__all__ = ["UIContext", "build_ui"]
