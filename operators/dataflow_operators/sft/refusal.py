"""Drop refusals and AI boilerplate in responses."""

from __future__ import annotations

from typing import Literal

import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.verdicts import verdict_of
from dataflow_operators.sft.response_copies import _literal

_A = "['’]"  # ASCII or typographic apostrophe


_CANT = f"(?:cannot|can{_A}?t|can not|am unable to|{_A}m unable to|am not able to|{_A}m not able to|won{_A}t|will not)"


REFUSAL_PATTERNS = {
    "refusal": [
        rf"\bI(?:{_A}m| am)(?: really| very| so)? sorry,? (?:but )?I {_CANT}",
        rf"\bI {_CANT} (?:help (?:you|with)|assist|provide|comply|fulfil|answer|do that|support|engage|"
        r"create|generate|write|produce|share)",
        r"\bI (?:must|have to|need to) (?:respectfully )?(?:decline|refuse)\b",
        r"\bI apologi[sz]e,? (?:but )?I\b",
        r"\b(?:it|this) (?:is|would be) (?:not appropriate|inappropriate|unethical) (?:for me )?to\b",
    ],
    "ai_disclaimer": [
        r"\bas an? (?:AI|artificial intelligence)\b",
        r"\bas a (?:large )?language model\b",
        rf"\bI(?:{_A}m| am) (?:just |only |merely )?an? (?:AI|artificial intelligence|(?:large )?language model|"
        r"virtual assistant|chatbot)\b",
        rf"\bI (?:do not|don{_A}t) have (?:personal )?(?:opinions|feelings|emotions|beliefs|preferences|"
        r"a physical (?:body|form))\b",
    ],
    "knowledge_cutoff": [
        r"\b(?:my|the) (?:knowledge|training)(?: data)? cut-?off\b",
        r"\bas of my (?:last )?(?:knowledge |training )?(?:update|cut-?off)\b",
        rf"\bI (?:do not|don{_A}t) have (?:access to )?(?:real-time|current|up-to-date) (?:information|data)\b",
        rf"\bI {_CANT} (?:browse|access) the (?:internet|web)\b",
    ],
    "model_identity": [
        r"\b(?:trained|developed|created|made|built) by OpenAI\b",
        rf"\bI(?:{_A}m| am) ChatGPT\b",
        rf"\bOpenAI(?:{_A}s)? (?:content )?(?:policy|policies|guidelines)\b",
    ],
}


Category = Literal["refusal", "ai_disclaimer", "knowledge_cutoff", "model_identity"]


class RefusalFilter(Filter):
    """Drop responses that refuse or carry assistant boilerplate ("As an AI language model").

    Each category is a set of case-insensitive patterns (straight or curly apostrophes):
    refusal ("I'm sorry, but I can't", "I cannot help with", "I must decline", "I apologize, but
    I"), ai_disclaimer ("as an AI", "as a language model", "I am just an AI", "I don't have
    personal opinions"), knowledge_cutoff ("my knowledge cutoff", "as of my last update", "I don't
    have real-time information", "I cannot browse the internet") and model_identity ("trained by
    OpenAI", "I am ChatGPT", "OpenAI's content policy"). `extra_phrases` adds literal phrases
    (category custom). The reason names the first matching category in that order, e.g.
    "ai_disclaimer phrase". A null response is kept (nothing to match).

    Inputs:
        response: the answer to check.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        categories: which categories to check (default: all four).
        extra_phrases: more literal phrases, matched case-insensitively anywhere (category custom).
        head_chars: only search the first this many code points (default: the whole response).
    """

    name = "refusal_filter"
    inputs = {"response": Port("the answer to check")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        categories: list[Category] = Field(
            ["refusal", "ai_disclaimer", "knowledge_cutoff", "model_identity"],
            min_length=1,
            description="Phrase categories to check: refusal, ai_disclaimer, knowledge_cutoff, model_identity.",
        )
        extra_phrases: list[str] = Field(
            [], description="More literal phrases (case-insensitive), category custom."
        )
        head_chars: int | None = Field(None, ge=1, description="Only search the first this many code points.")

        @field_validator("categories")
        @classmethod
        def _distinct(cls, categories):
            if len(set(categories)) != len(categories):
                raise ValueError("a category is listed twice")
            return categories

        @field_validator("extra_phrases")
        @classmethod
        def _nonempty(cls, phrases):
            if any(not p.strip() for p in phrases):
                raise ValueError("a phrase in `extra_phrases` is empty")
            return phrases

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        order = [c for c in REFUSAL_PATTERNS if c in self.params.categories]
        self.patterns = [("(?i)" + "|".join(REFUSAL_PATTERNS[c]), f"{c} phrase") for c in order]
        if self.params.extra_phrases:
            literal = "|".join(_literal(p) for p in self.params.extra_phrases)
            self.patterns.append((f"(?i){literal}", "custom phrase"))

    def filter(self, batch: Batch) -> Verdict:
        text = text_column(batch, "response")
        if self.params.head_chars is not None:
            text = pc.utf8_slice_codeunits(text, 0, self.params.head_chars)
        conditions = [
            (pc.match_substring_regex(text, pattern).fill_null(False).to_numpy(zero_copy_only=False), reason)
            for pattern, reason in self.patterns
        ]
        return verdict_of(conditions, len(text))
