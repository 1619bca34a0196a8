"""Chat transcript checks for SFT data: roles, order, alternation, empty turns."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.verdicts import verdict_of


class ConversationFormatFilter(Filter):
    """Keep conversations that are well-formed chat transcripts.

    `messages` is a list of {role, content} structs. Checks, in order: the list is not null
    ("`messages` is null") and not empty ("no messages"); with `system: required` the first turn
    is a system message ("turn 0: missing system message"); then, turn by turn (the reason names
    the first failing turn, 0-based): the role is one of `allowed_roles` ("turn 2: role not
    allowed"), a system message is only the first turn ("turn 3: system message not first", or
    "turn 0: system message not allowed" with `system: forbidden`), user and assistant turns
    alternate: the first turn after the optional system message is a user turn ("turn 0: expected
    user"), no user turn directly follows a user turn ("turn 2: expected assistant") and no
    assistant turn directly follows an assistant turn ("turn 3: expected user"), while turns of
    other allowed roles may sit between them (user, assistant, tool, assistant is fine); the
    content is not null, empty or whitespace ("turn 4: empty content"); finally the last turn is
    an assistant turn ("last turn not assistant").

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
            after_system, after_user, after_assistant = (
                _previous(flags, turn) for flags in (is_system, is_user, is_assistant)
            )
            opening = ((turn == 0) & ~is_system) | ((turn == 1) & after_system)
            checks.append((opening & ~is_user, "expected user"))
            checks.append((~opening & is_user & after_user, "expected assistant"))
            checks.append((~opening & is_assistant & after_assistant, "expected user"))
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
        starts_with_system = np.zeros(n, bool)
        ends_with_assistant = np.zeros(n, bool)
        nonempty = lengths > 0
        starts_with_system[nonempty] = is_system[offsets[:-1][nonempty]]
        ends_with_assistant[nonempty] = is_assistant[offsets[1:][nonempty] - 1]
        conditions = [
            (null, f"`{self.input_columns['messages']}` is null"),
            (~null & ~nonempty, "no messages"),
        ]
        if p.system == "required":
            conditions.append((nonempty & ~starts_with_system, "turn 0: missing system message"))
        turn_failed = np.array([r is not None for r in turn_reason], bool)
        conditions.append((turn_failed, "turn"))  # placeholder, replaced by the turn's reason below
        if p.require_final_assistant:
            conditions.append((nonempty & ~ends_with_assistant, "last turn not assistant"))
        verdict = verdict_of(conditions, n)
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


def _previous(flags: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Whether the previous turn of the same conversation has the flag (False for turn 0)."""
    previous = np.zeros(len(flags), bool)
    previous[1:] = flags[:-1]
    return previous & (turn > 0)
