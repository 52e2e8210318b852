"""Settings, the model catalogue, style presets and tiers, read from TOML files (stdlib only)."""
from configs.catalogue import ModelEntry, Style, load_models, load_styles, needs_hub
from configs.settings import Limits, OAuthProvider, Settings, load_settings
from configs.tiers import CreditPack, CreditPrices, Tier, Tiers, load_tiers

__all__ = ["CreditPack", "CreditPrices", "Limits", "ModelEntry", "OAuthProvider", "Settings", "Style", "Tier", "Tiers",
           "load_models", "load_settings", "load_styles", "load_tiers", "needs_hub"]
