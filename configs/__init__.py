"""Settings, the model catalogue and style presets, read from TOML files (stdlib only)."""
from configs.catalogue import ModelEntry, Style, load_models, load_styles, needs_hub
from configs.settings import CreditPrices, Limits, Settings, load_settings

__all__ = ["CreditPrices", "Limits", "ModelEntry", "Settings", "Style", "load_models", "load_settings", "load_styles", "needs_hub"]
