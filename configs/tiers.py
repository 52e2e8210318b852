"""Tiers, credit packs and credit prices, read from `configs/tiers.toml` (stdlib only)."""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CreditPrices:
    """What a job costs: `base_image` credits per 512x512 SD1.5 image, scaled by pixels and family;
    `upscale` per image run through an upscaler model; `lora` per LoRA per image; `controlnet` per image
    guided by a ControlNet; `video_frame` per frame of video made by a video model; `interpolated_frame`
    per frame added by frame interpolation."""

    base_image: float = 1.0
    sdxl_multiplier: float = 2.0
    upscale: float = 3.0
    lora: float = 0.5
    controlnet: float = 1.0
    video_frame: float = 1.0
    interpolated_frame: float = 0.1


@dataclass(frozen=True)
class Tier:
    """What a tier gets.

    name:                  free, standard, pro or enterprise (any name the file gives).
    monthly_credits:       granted at the start of each calendar month (UTC).
    max_side:              widest image side a request may ask for; 0 = only the global limits.
    max_frames:            most frames of one video; 0 = only the global limits.
    max_nodes:             most nodes in one workflow (steps in one replayed plan); 0 = only the global
                           [limits] max_nodes. Bounds how long one job may hold a worker.
    priority:              queue priority; higher tiers' jobs start first.
    generations_per_hour:  generations a user may submit in any hour, counted per job as its steps that
                           make images or video, at least 1 (a 5-step workflow uses 5); 0 = no limit.
    api_calls_per_minute:  API calls a user may make in any minute; 0 = no limit.
    reuse_cost:            the fraction of a job's price charged when it is served from the stored outputs of
                           an identical earlier job of the user's (no worker runs): 0 = free, 1 = full price.
    stripe_price:          the Stripe subscription price id that puts a user on this tier.
    """

    name: str
    monthly_credits: float = 0.0
    max_side: int = 0
    max_frames: int = 0
    max_nodes: int = 0
    priority: int = 0
    generations_per_hour: int = 0
    api_calls_per_minute: int = 0
    reuse_cost: float = 0.0
    stripe_price: str = ""


@dataclass(frozen=True)
class CreditPack:
    """Credits sold in one Stripe Checkout: `price_id` is the Stripe price, `label` what the button says.
    The webhook grants `credits` for each unit of `price_id` a paid Checkout Session sold, so the file is
    the only place the number comes from; `load_tiers` refuses a pack whose credits are not a finite
    positive number or whose price another pack already sells."""

    id: str
    credits: int
    price_id: str
    label: str = ""


@dataclass(frozen=True)
class Tiers:
    """Everything in tiers.toml. The first tier in the file is the one new users get."""

    tiers: tuple[Tier, ...]
    packs: tuple[CreditPack, ...] = ()
    prices: CreditPrices = CreditPrices()

    @property
    def default(self) -> Tier:
        return self.tiers[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    def tier(self, name: str) -> Tier:
        """The tier called `name`; the default tier for a name the file no longer has."""
        return next((t for t in self.tiers if t.name == name), self.default)

    def tier_for_price(self, price_id: str) -> Tier | None:
        return next((t for t in self.tiers if price_id and t.stripe_price == price_id), None)

    def pack(self, pack_id: str) -> CreditPack | None:
        return next((p for p in self.packs if p.id == pack_id), None)

    def pack_for_price(self, price_id: str) -> CreditPack | None:
        """The pack that Stripe price `price_id` sells; None for a price no pack has."""
        return next((p for p in self.packs if price_id and p.price_id == price_id), None)


def _only_known(cls, values: dict, where: str) -> dict:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known - {'name'})}.")
    return values


def _tier(name: str, values: dict, where: str) -> Tier:
    """One [tier.NAME] table; raises ValueError when its reuse_cost is not a fraction from 0 to 1."""
    tier = Tier(name=name, **_only_known(Tier, values, where))
    cost = tier.reuse_cost
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 <= cost <= 1:
        raise ValueError(f"{where}: reuse_cost = {cost!r}; give the fraction of the price a reused job costs, "
                         "from 0 (free) to 1 (full price).")
    return tier


def _pack(values: dict, where: str) -> CreditPack:
    """One [[pack]] table; raises ValueError when its credits are not a finite positive number (what a
    payment grants must never be NaN, infinite, zero or negative) or it names no Stripe price."""
    pack = CreditPack(**_only_known(CreditPack, values, where))
    amount = pack.credits
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"{where} id = {pack.id!r}: credits = {amount!r}; give the positive number of credits the "
                         "pack sells, such as credits = 100.")
    if not isinstance(pack.price_id, str) or not pack.price_id:
        raise ValueError(f"{where} id = {pack.id!r}: price_id = {pack.price_id!r}; give the Stripe price id that "
                         "sells the pack (price_...).")
    return pack


def load_tiers(path: str | os.PathLike) -> Tiers:
    """Read a tiers file; raises ValueError naming the key that is wrong."""
    with open(path, "rb") as f:
        toml = tomllib.load(f)
    tiers = tuple(_tier(name, values, f"{path} [tier.{name}]") for name, values in toml.get("tier", {}).items())
    if not tiers:
        raise ValueError(f"{path} defines no [tier.NAME] section; add at least one (the first is the default).")
    packs = tuple(_pack(values, f"{path} [[pack]]") for values in toml.get("pack", []))
    sold = [p.price_id for p in packs]
    twice = sorted({price for price in sold if sold.count(price) > 1})
    if twice:
        raise ValueError(f"{path}: more than one [[pack]] has price_id {twice}; give each pack its own Stripe price "
                         "(a payment for it must say which pack was bought).")
    prices = CreditPrices(**_only_known(CreditPrices, toml.get("credits", {}), f"{path} [credits]"))
    return Tiers(tiers=tiers, packs=packs, prices=prices)
