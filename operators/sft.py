"""Checks for supervised fine-tuning (SFT) data: lengths, refusals, copied prompts, chat format."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.operator import Batch, Evaluator, Filter, Port, Verdict
from operators._arrow import reasons, text_column, word_and_line_counts
from operators.generic import format_bound

# --- instruction/response lengths ---


def _lengths(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(words, code points, null mask) of a text column; nulls count 0."""
    words, _ = word_and_line_counts(text)
    chars = pc.utf8_length(text)
    null = text.is_null().to_numpy(zero_copy_only=False)
    return (
        words.fill_null(0).to_numpy(zero_copy_only=False),
        chars.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
        null,
    )


class InstructionResponseEvaluator(Evaluator):
    """Measure instruction and response lengths and their ratio.

    Words are whitespace-separated (as `length_evaluator`), chars are code points. The ratio is
    response words / instruction words, dividing by 1 when the instruction has no words. A null
    instruction gives null instruction counts, a null response null response counts, and either
    gives a null ratio.

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        instruction_words: words of the instruction (int64).
        response_words: words of the response (int64).
        instruction_chars: code points of the instruction (int64).
        response_chars: code points of the response (int64).
        response_instruction_ratio: response words / max(instruction words, 1) (float64).
    Params:
        (none)
    """

    name = "instruction_response_evaluator"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}
    outputs = {
        "instruction_words": Port("whitespace-separated words of the instruction", "int64"),
        "response_words": Port("whitespace-separated words of the response", "int64"),
        "instruction_chars": Port("code points of the instruction", "int64"),
        "response_chars": Port("code points of the response", "int64"),
        "response_instruction_ratio": Port("response words / max(instruction words, 1)", "float64"),
    }

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        iw, ic, inull = _lengths(text_column(batch, "instruction"))
        rw, rc, rnull = _lengths(text_column(batch, "response"))
        i64 = pa.int64()
        return {
            "instruction_words": pa.array(iw, i64, mask=inull),
            "response_words": pa.array(rw, i64, mask=rnull),
            "instruction_chars": pa.array(ic, i64, mask=inull),
            "response_chars": pa.array(rc, i64, mask=rnull),
            "response_instruction_ratio": pa.array(rw / np.maximum(iw, 1), pa.float64(), mask=inull | rnull),
        }


class InstructionResponseFilter(Filter):
    """Keep instruction/response pairs whose lengths and length ratio are within bounds.

    Lengths are whitespace-separated words (`unit: words`) or code points (`unit: chars`); the
    ratio is response length / max(instruction length, 1). Bounds are inclusive and each can be
    switched off with null. Checks, in order: null instruction, null response, then the bounds as
    listed below. Reasons name the measure and the bound, e.g. "response_words < 1" or
    "response_instruction_ratio > 50".

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        unit: measure lengths in words (default) or chars.
        min_instruction: shortest instruction (default 1).
        max_instruction: longest instruction (default none).
        min_response: shortest response (default 1).
        max_response: longest response (default none).
        min_ratio: lowest response/instruction length ratio (default none).
        max_ratio: highest response/instruction length ratio (default none).
    """

    name = "instruction_response_filter"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        unit: Literal["words", "chars"] = Field(
            "words", description="Measure lengths in words or code points."
        )
        min_instruction: int | None = Field(1, ge=0, description="Shortest instruction (inclusive).")
        max_instruction: int | None = Field(None, ge=0, description="Longest instruction (inclusive).")
        min_response: int | None = Field(1, ge=0, description="Shortest response (inclusive).")
        max_response: int | None = Field(None, ge=0, description="Longest response (inclusive).")
        min_ratio: float | None = Field(None, ge=0, description="Lowest response/instruction length ratio.")
        max_ratio: float | None = Field(None, ge=0, description="Highest response/instruction length ratio.")

        @model_validator(mode="after")
        def _ordered(self):
            for low, high in (
                ("min_instruction", "max_instruction"),
                ("min_response", "max_response"),
                ("min_ratio", "max_ratio"),
            ):
                a, b = getattr(self, low), getattr(self, high)
                if a is not None and b is not None and a > b:
                    raise ValueError(
                        f"`{low}` ({format_bound(a)}) is greater than `{high}` ({format_bound(b)})"
                    )
            return self

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        iw, ic, inull = _lengths(text_column(batch, "instruction"))
        rw, rc, rnull = _lengths(text_column(batch, "response"))
        instruction, response = (iw, rw) if p.unit == "words" else (ic, rc)
        ratios = response / np.maximum(instruction, 1)
        conditions = [
            (inull, f"`{self.input_columns['instruction']}` is null"),
            (rnull, f"`{self.input_columns['response']}` is null"),
        ]
        for values, measure in ((instruction, "instruction"), (response, "response"), (ratios, "ratio")):
            name = "response_instruction_ratio" if measure == "ratio" else f"{measure}_{p.unit}"
            low, high = getattr(p, f"min_{measure}"), getattr(p, f"max_{measure}")
            if low is not None:
                conditions.append((values < low, f"{name} < {format_bound(low)}"))
            if high is not None:
                conditions.append((values > high, f"{name} > {format_bound(high)}"))
        return verdict_of(conditions, len(iw))


def verdict_of(conditions: list[tuple[np.ndarray, str]], n: int) -> Verdict:
    """Drop rows where any condition holds, with the reason of the first one that does."""
    dropped = np.zeros(n, bool)
    for condition, _ in conditions:
        dropped |= condition
    arrays = [(pa.array(condition, pa.bool_()), reason) for condition, reason in conditions]
    return Verdict(keep=~dropped, reason=reasons(arrays, n))


# --- refusals and assistant boilerplate ---

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


def _literal(text: str) -> str:
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):X}}}" for c in text)


# --- responses copying the instruction ---


def _normalize(text: pa.Array) -> list[str | None]:
    """Casefolded words joined by single spaces: runs of non-alphanumerics become one space."""
    lowered = pc.utf8_lower(text)
    return pc.utf8_trim(pc.replace_substring_regex(lowered, r"[^\pL\pN]+", " "), characters=" ").to_pylist()


class ResponseCopiesInstructionFilter(Filter):
    """Drop responses that repeat the instruction instead of answering it.

    Both texts are normalized: lowercased, every run of characters that are not letters or digits
    replaced by one space, stripped; tokens are the resulting space-separated words. Checks, in
    order, on non-empty normalized responses: "response equals instruction" (identical);
    "response starts with instruction" (the response begins with the whole instruction followed
    by more words, and the instruction has at least `min_words` tokens); "response is contained in
    instruction" (the response is a contiguous run of whole instruction tokens and has at least
    `min_words` tokens); "response token overlap > X" (of the response's distinct tokens, the
    share also in the instruction exceeds `max_token_overlap`; responses of at least `min_words`
    distinct tokens only). Rows with a null instruction or response are kept.

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_words: fewest tokens for the starts-with, contained and overlap checks (default 5).
        check_starts_with: drop responses starting with the instruction (default true).
        check_contained: drop responses contained in the instruction (default true).
        max_token_overlap: highest share of response tokens found in the instruction (default
            0.9; null switches the check off). Rewriting tasks (fix grammar, paraphrase) overlap
            heavily by design: switch it off for them.
    """

    name = "response_copies_instruction_filter"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_words: int = Field(
            5, ge=1, description="Fewest tokens for the starts-with, contained and overlap checks."
        )
        check_starts_with: bool = Field(
            True, description="Drop responses that start with the whole instruction."
        )
        check_contained: bool = Field(True, description="Drop responses contained in the instruction.")
        max_token_overlap: float | None = Field(
            0.9, ge=0, le=1, description="Highest share of distinct response tokens also in the instruction."
        )

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        instructions = _normalize(text_column(batch, "instruction"))
        responses = _normalize(text_column(batch, "response"))
        n = len(responses)
        keep = np.ones(n, bool)
        reason: list[str | None] = [None] * n
        overlap_reason = (
            None
            if p.max_token_overlap is None
            else f"response token overlap > {format_bound(p.max_token_overlap)}"
        )
        for i, (ins, res) in enumerate(zip(instructions, responses, strict=True)):
            if not res or ins is None:
                continue
            why = None
            if res == ins:
                why = "response equals instruction"
            elif p.check_starts_with and res.startswith(ins + " ") and ins.count(" ") + 1 >= p.min_words:
                why = "response starts with instruction"
            elif p.check_contained and res.count(" ") + 1 >= p.min_words and f" {res} " in f" {ins} ":
                why = "response is contained in instruction"
            elif overlap_reason is not None:
                tokens = set(res.split(" "))
                if len(tokens) >= p.min_words and ins:
                    shared = len(tokens.intersection(ins.split(" ")))
                    if shared / len(tokens) > p.max_token_overlap:
                        why = overlap_reason
            if why is not None:
                keep[i] = False
                reason[i] = why
        return Verdict(keep=keep, reason=pa.array(reason, pa.string()))
