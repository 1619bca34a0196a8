"""Checks for supervised fine-tuning (SFT) data: lengths, refusals, copied prompts, chat format."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError
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
        return _verdict(conditions, len(iw))


def _verdict(conditions: list[tuple[np.ndarray, str]], n: int) -> Verdict:
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
        return _verdict(conditions, len(text))


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


# --- chat conversation format ---


class ConversationFormatFilter(Filter):
    """Keep conversations that are well-formed chat transcripts.

    `messages` is a list of {role, content} structs. Checks, in order: the list is not null
    ("`messages` is null") and not empty ("no messages"); with `system: required` the first turn
    is a system message ("turn 0: missing system message"); then, turn by turn (the reason names
    the first failing turn, 0-based): the role is one of `allowed_roles` ("turn 2: role not
    allowed"), a system message is only the first turn ("turn 3: system message not first", or
    "turn 0: system message not allowed" with `system: forbidden`), user and assistant turns
    alternate starting with user, other allowed roles (e.g. tool) being skipped ("turn 1: expected
    assistant"), the content is not null, empty or whitespace ("turn 4: empty content"); finally
    the last turn is an assistant turn ("last turn not assistant").

    Inputs:
        messages: list of {role, content} structs (field names set by role_field/content_field).
    Outputs:
        (none: rows are kept or dropped)
    Params:
        allowed_roles: roles a turn may have (default: system, user, assistant).
        system: optional (default), required or forbidden system message (first turn only).
        require_alternation: user and assistant turns alternate, starting with user (default true).
        require_final_assistant: the last turn is an assistant turn (default true).
        allow_empty_content: accept empty or whitespace-only contents (default false).
        role_field: name of the role field of a message struct (default role).
        content_field: name of the content field of a message struct (default content).
    """

    name = "conversation_format_filter"
    inputs = {"messages": Port("list of {role, content} structs")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        allowed_roles: list[str] = Field(
            ["system", "user", "assistant"], min_length=1, description="Roles a turn may have."
        )
        system: Literal["optional", "required", "forbidden"] = Field(
            "optional", description="Whether the first turn may, must or must not be a system message."
        )
        require_alternation: bool = Field(
            True, description="User and assistant turns alternate, starting with user."
        )
        require_final_assistant: bool = Field(True, description="The last turn is an assistant turn.")
        allow_empty_content: bool = Field(False, description="Accept empty or whitespace-only contents.")
        role_field: str = Field("role", min_length=1, description="Name of the role field of a message.")
        content_field: str = Field(
            "content", min_length=1, description="Name of the content field of a message."
        )

        @model_validator(mode="after")
        def _consistent(self):
            roles = self.allowed_roles
            if len(set(roles)) != len(roles):
                raise ValueError("a role is listed twice in `allowed_roles`")
            if self.system == "required" and "system" not in roles:
                raise ValueError("`system: required` needs `system` in `allowed_roles`")
            if self.require_final_assistant and "assistant" not in roles:
                raise ValueError("`require_final_assistant` needs `assistant` in `allowed_roles`")
            return self

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        messages = self._messages(batch)
        n = len(messages)
        lengths = pc.list_value_length(messages).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = messages.flatten()
        roles = pc.if_else(flat.is_null(), None, flat.field(p.role_field))
        contents = pc.if_else(flat.is_null(), None, flat.field(p.content_field))
        turn = np.arange(len(flat)) - np.repeat(offsets[:-1], lengths)
        row = np.repeat(np.arange(n), lengths)

        def flag(array) -> np.ndarray:
            return pc.fill_null(array, False).to_numpy(zero_copy_only=False)

        is_system = flag(pc.equal(roles, "system"))
        is_user = flag(pc.equal(roles, "user"))
        is_assistant = flag(pc.equal(roles, "assistant"))
        checks = [
            (~flag(pc.is_in(roles, value_set=pa.array(p.allowed_roles, pa.string()))), "role not allowed"),
            (
                is_system & ((turn > 0) if p.system != "forbidden" else True),
                "system message not first" if p.system != "forbidden" else "system message not allowed",
            ),
        ]
        if p.require_alternation:
            talk = is_user | is_assistant
            before = np.cumsum(talk) - talk  # user/assistant turns before this one, in the batch
            rank = before - np.repeat(np.concatenate([[0], np.cumsum(talk)])[offsets[:-1]], lengths)
            checks.append((talk & (rank % 2 == 0) & ~is_user, "expected user"))
            checks.append((talk & (rank % 2 == 1) & ~is_assistant, "expected assistant"))
        if not p.allow_empty_content:
            empty = pc.equal(pc.binary_length(pc.utf8_trim_whitespace(contents)), 0)
            checks.append((flag(pc.or_kleene(empty, pc.is_null(contents))), "empty content"))
        code = np.zeros(len(flat), np.int64)
        for k in range(len(checks) - 1, -1, -1):  # the first failing check wins
            code[checks[k][0]] = k + 1
        bad = np.flatnonzero(code)
        bad_rows, first = np.unique(row[bad], return_index=True)
        turn_reason = [None] * n
        for r, position in zip(bad_rows, bad[first], strict=True):
            turn_reason[r] = f"turn {turn[position]}: {checks[code[position] - 1][1]}"
        null = messages.is_null().to_numpy(zero_copy_only=False)
        first_role = np.zeros(n, bool)
        last_role = np.zeros(n, bool)
        nonempty = lengths > 0
        first_role[nonempty] = is_system[offsets[:-1][nonempty]]
        last_role[nonempty] = is_assistant[offsets[1:][nonempty] - 1]
        conditions = [
            (null, f"`{self.input_columns['messages']}` is null"),
            (~null & ~nonempty, "no messages"),
        ]
        if p.system == "required":
            conditions.append((nonempty & ~first_role, "turn 0: missing system message"))
        turn_failed = np.array([r is not None for r in turn_reason], bool)
        conditions.append((turn_failed, "turn"))
        if p.require_final_assistant:
            conditions.append((nonempty & ~last_role, "last turn not assistant"))
        verdict = _verdict(conditions, n)
        reason = verdict.reason.to_pylist()
        for i in np.flatnonzero(turn_failed):
            if reason[i] == "turn":
                reason[i] = turn_reason[i]
        return Verdict(keep=verdict.keep, reason=pa.array(reason, pa.string()))

    def _messages(self, batch: Batch) -> pa.Array:
        column = self.input_columns["messages"]
        messages = batch.column("messages")
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        kind = messages.type
        fields = [(self.params.role_field, pa.string()), (self.params.content_field, pa.string())]
        if pa.types.is_null(kind):
            return pa.nulls(len(messages), pa.list_(pa.struct(fields)))
        value = getattr(kind, "value_type", None)
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_struct(value):
            raise DataflowError(
                f"column `{column}` must be a list of {{role, content}} structs but is {kind}",
                hint="bind `messages` to a list-of-structs column (JSONL: a list of objects)",
            )
        names = {value.field(i).name: value.field(i).type for i in range(value.num_fields)}
        for field, _ in fields:
            if field not in names:
                raise DataflowError(
                    f"messages in `{column}` have no `{field}` field (fields: {', '.join(sorted(names))})",
                    hint="set role_field/content_field to the names your data uses",
                )
            if not (
                pa.types.is_string(names[field])
                or pa.types.is_large_string(names[field])
                or pa.types.is_null(names[field])
            ):
                raise DataflowError(
                    f"the `{field}` of messages in `{column}` must be text but is {names[field]}",
                    hint="convert structured contents (e.g. lists of parts) to text first",
                )
        return messages
