"""What a backend's tokens cost, in USD.

A price set in the spec (`backends.<name>.price`) wins; otherwise litellm's price map is used
for API providers (`openai`, `litellm`) when litellm is installed. The map is read from the JSON
file litellm ships (the same data `litellm.model_cost` holds with LITELLM_LOCAL_MODEL_COST_MAP),
so no price lookup pays litellm's ~3 s import or touches the network. A model found nowhere has
an unknown price: its cost is reported as unknown, never as 0.

Batch API prices: the spec's `batch_input_per_mtok`/`batch_output_per_mtok`, else the map's
`*_cost_per_token_batches`, else half the online price (what the main providers charge).
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

BATCH_DISCOUNT = 0.5
PRICED_PROVIDERS = frozenset({"openai", "litellm"})  # API providers litellm's map can know


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(..., ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(..., ge=0, description="USD per million completion tokens.")
    batch_input_per_mtok: float | None = Field(
        None, ge=0, description="USD per million prompt tokens through the Batch API (default: half)."
    )
    batch_output_per_mtok: float | None = Field(
        None, ge=0, description="USD per million completion tokens through the Batch API (default: half)."
    )
    source: str = Field("spec", exclude=True, description="Where the price came from (spec or litellm).")

    def cost(self, prompt_tokens: float, completion_tokens: float, *, batch: bool = False) -> float:
        inp, out = self.rates(batch)
        return (prompt_tokens * inp + completion_tokens * out) / 1e6

    def rates(self, batch: bool = False) -> tuple[float, float]:
        if not batch:
            return self.input_per_mtok, self.output_per_mtok
        inp = self.batch_input_per_mtok
        out = self.batch_output_per_mtok
        return (
            self.input_per_mtok * BATCH_DISCOUNT if inp is None else inp,
            self.output_per_mtok * BATCH_DISCOUNT if out is None else out,
        )


@lru_cache(maxsize=1)
def litellm_price_map() -> dict[str, Any]:
    """litellm's model price map, or {} when litellm is not installed."""
    loaded = sys.modules.get("litellm")
    if loaded is not None and isinstance(getattr(loaded, "model_cost", None), dict):
        return loaded.model_cost
    import importlib.util

    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def map_price(model: str) -> Price | None:
    """The price litellm's map gives `model` (also tried without a `provider/` prefix)."""
    table = litellm_price_map()
    candidates = [model]
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    for name in candidates:
        entry = table.get(name)
        if not isinstance(entry, dict):
            continue
        inp, out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if not isinstance(inp, (int, float)) or not isinstance(out, (int, float)):
            continue
        b_in, b_out = entry.get("input_cost_per_token_batches"), entry.get("output_cost_per_token_batches")
        return Price(
            input_per_mtok=inp * 1e6,
            output_per_mtok=out * 1e6,
            batch_input_per_mtok=b_in * 1e6 if isinstance(b_in, (int, float)) else None,
            batch_output_per_mtok=b_out * 1e6 if isinstance(b_out, (int, float)) else None,
            source="litellm",
        )
    return None


def resolve_price(config: Any) -> Price | None:
    """A backend config's price: the spec's, else litellm's map (API providers only), else None."""
    price = getattr(config, "price", None)
    if price is not None:
        return price
    if getattr(config, "provider", None) in PRICED_PROVIDERS and getattr(config, "model", None):
        return map_price(config.model)
    return None


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
