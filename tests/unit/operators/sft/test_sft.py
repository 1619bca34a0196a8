"""SFT operators: instruction/response lengths, refusals, copied instructions, chat format."""

import json

import pyarrow as pa
import pytest
from dataflow_operators.sft.conversation import ConversationFormatFilter
from dataflow_operators.sft.instruction_response import (
    InstructionResponseEvaluator,
    InstructionResponseFilter,
)
from dataflow_operators.sft.refusal import RefusalFilter
from dataflow_operators.sft.response_copies import ResponseCopiesInstructionFilter
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict

BIG = 5 * 1024 * 1024


def table(**columns):
    n = len(next(iter(columns.values())))
    return pa.table({**columns, "_id": [str(i) for i in range(n)]})


def reasons(op, **columns):
    columns = {k: pa.array(v, pa.string()) if not isinstance(v, pa.Array) else v for k, v in columns.items()}
    result = op.process(Batch(table(**columns), op.input_columns))
    assert isinstance(result, Verdict)
    keep = pa.array(result.keep)
    assert keep.type == pa.bool_() and keep.null_count == 0
    out = pa.array(result.reason, pa.string()).to_pylist()
    assert [r is None for r in out] == keep.to_pylist()
    return out


# --- instruction_response_evaluator ---


def test_instruction_response_evaluator_hand_computed():
    op = InstructionResponseEvaluator()
    pairs = [
        ("What is 2+2?", "It is 4."),  # 3 and 3 words, 12 and 8 code points
        ("", "Some answer here"),  # no instruction words: ratio 3 / max(0, 1) = 3
        (None, "x"),
        ("Explain", None),
        ("日本語の質問", "答え 😀"),  # 1 word / 6 code points; 2 words / 4 code points
    ]
    batch = Batch(table(instruction=[p[0] for p in pairs], response=[p[1] for p in pairs]), op.input_columns)
    result = {k: pa.array(v).to_pylist() for k, v in op.process(batch).items()}
    assert result == {
        "instruction_words": [3, 0, None, 1, 1],
        "response_words": [3, 3, 1, None, 2],
        "instruction_chars": [12, 0, None, 7, 6],
        "response_chars": [8, 16, 1, None, 4],
        "response_instruction_ratio": [1.0, 3.0, None, None, 2.0],
    }
    assert (
        op.transform_schema({"instruction": "string", "response": "string"})["response_instruction_ratio"]
        == "float64"
    )


# --- instruction_response_filter ---


def test_instruction_response_filter_defaults_and_bounds():
    instructions = ["Q?", "", "Q?", None, "Q", "Explain", "a", "a b"]
    responses = ["A.", "A.", "   ", "x", None, "one two three four", "one two three", "one two three"]
    assert reasons(InstructionResponseFilter(), instruction=instructions, response=responses) == [
        None,
        "instruction_words < 1",
        "response_words < 1",
        "`instruction` is null",
        "`response` is null",
        None,
        None,
        None,
    ]
    bounded = InstructionResponseFilter(InstructionResponseFilter.Params(max_response=3, max_ratio=2))
    # "one two three four" has 4 words; 3 words for a 1-word instruction is a ratio of 3.
    assert reasons(bounded, instruction=instructions[5:], response=responses[5:]) == [
        "response_words > 3",
        "response_instruction_ratio > 2",
        None,  # 3 / 2 = 1.5
    ]


def test_instruction_response_filter_chars_unicode_and_huge():
    op = InstructionResponseFilter(
        InstructionResponseFilter.Params(unit="chars", min_response=5, max_instruction=10)
    )
    assert reasons(
        op,
        instruction=["Q", "質問です", "x" * 11, "q"],
        response=["abcd", "答え😀です", "long enough", "y" * BIG],
    ) == ["response_chars < 5", None, "instruction_chars > 10", None]
    ratio = InstructionResponseFilter(InstructionResponseFilter.Params(min_ratio=0.5, unit="chars"))
    assert reasons(ratio, instruction=["abcd"], response=["a"]) == ["response_instruction_ratio < 0.5"]


def test_instruction_response_filter_validation():
    with pytest.raises(ValidationError, match=r"`min_response` \(5\) is greater than `max_response` \(2\)"):
        InstructionResponseFilter.Params(min_response=5, max_response=2)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        InstructionResponseFilter.Params(max_ratio=-1)
    with pytest.raises(ValidationError, match="'words' or 'chars'"):
        InstructionResponseFilter.Params(unit="tokens")


# --- refusal_filter ---


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("I'm sorry, but I can't help with that.", "refusal phrase"),
        ("I’m sorry, but I can’t do that.", "refusal phrase"),  # curly apostrophes
        ("I cannot assist with this request.", "refusal phrase"),
        ("I apologize, but I must decline.", "refusal phrase"),
        ("I am unable to provide that information.", "refusal phrase"),
        ("As an AI language model, I think so.", "ai_disclaimer phrase"),
        ("Well, as a large language model I have limits.", "ai_disclaimer phrase"),
        ("I am just an AI, but here goes.", "ai_disclaimer phrase"),
        ("I don't have personal opinions on that.", "ai_disclaimer phrase"),
        ("As of my last knowledge update in 2021, it was.", "knowledge_cutoff phrase"),
        ("My knowledge cutoff prevents that.", "knowledge_cutoff phrase"),
        ("I don't have real-time information.", "knowledge_cutoff phrase"),
        ("I was trained by OpenAI.", "model_identity phrase"),
        ("Sure! Here is the code.", None),
        ("I can't help but notice your shoes.", None),  # an idiom, not a refusal
        ("I apologize for the delay, here it is.", None),
        ("As an aside, cats purr.", None),
        ("", None),
        (None, None),  # nothing to match: kept
    ],
)
def test_refusal_categories(response, reason):
    assert reasons(RefusalFilter(), response=[response]) == [reason]


def test_refusal_params():
    only_cutoff = RefusalFilter(RefusalFilter.Params(categories=["knowledge_cutoff"]))
    texts = ["As an AI, no.", "As of my last update, yes."]
    assert reasons(only_cutoff, response=texts) == [None, "knowledge_cutoff phrase"]
    custom = RefusalFilter(RefusalFilter.Params(extra_phrases=["[citation]", "Ünïcode"]))
    assert reasons(custom, response=["see [CITATION] here", "see citation", "ÜNÏCODE!"]) == [
        "custom phrase",
        None,
        "custom phrase",
    ]
    # An AI disclaimer and a custom phrase: the categories come first.
    assert reasons(custom, response=["As an AI [citation]"]) == ["ai_disclaimer phrase"]
    head = RefusalFilter(RefusalFilter.Params(head_chars=20))
    tail = "x" * BIG + " As an AI language model"
    assert reasons(head, response=[tail, "As an AI, I cannot say."]) == [None, "ai_disclaimer phrase"]
    assert reasons(RefusalFilter(), response=[tail]) == ["ai_disclaimer phrase"]
    with pytest.raises(ValidationError, match="a category is listed twice"):
        RefusalFilter.Params(categories=["refusal", "refusal"])
    with pytest.raises(ValidationError, match="at least 1 item"):
        RefusalFilter.Params(categories=[])
    with pytest.raises(ValidationError, match="ai_disclaimer"):
        RefusalFilter.Params(categories=["rude"])
    with pytest.raises(ValidationError, match="a phrase in `extra_phrases` is empty"):
        RefusalFilter.Params(extra_phrases=[""])


# --- response_copies_instruction_filter ---


def test_response_copies_instruction_hand_computed():
    pairs = [
        ("Translate to French: good morning", "Translate to French: good morning"),
        ("Hello, World!", "hello world"),  # equal after normalization
        ("What is the capital of France", "What is the capital of France? Paris is the capital."),
        ("Summarize: the cat sat on the mat all day long", "the cat sat on the mat"),
        ("List the colors of the rainbow in order please", "rainbow colors the order in the list of"),
        ("What is 2+2?", "4"),
        ("Yes or no: is the sky blue?", "Yes"),  # 1 token: too short for containment
        ("Hi", "Hi"),  # identical: no minimum
        ("日本語を翻訳してください", "日本語を翻訳してください"),
        (None, "x"),
        ("x", None),
        ("Say something", ""),
        ("What is the capital of France", "The capital of France is Paris, a city on the Seine."),
    ]
    op = ResponseCopiesInstructionFilter()
    # Row 4: all 7 distinct response tokens are instruction tokens: overlap 1.0 > 0.9.
    # Last row: 9 of 11 distinct tokens... {the, capital, of, france, is, paris, a, city, on, seine}:
    # the, capital, of, france, is are shared = 5/10 -> kept.
    assert reasons(op, instruction=[p[0] for p in pairs], response=[p[1] for p in pairs]) == [
        "response equals instruction",
        "response equals instruction",
        "response starts with instruction",
        "response is contained in instruction",
        "response token overlap > 0.9",
        None,
        None,
        "response equals instruction",
        "response equals instruction",
        None,
        None,
        None,
        None,
    ]


def test_response_copies_instruction_params():
    pairs = [
        ("What is the capital of France", "What is the capital of France? Paris is the capital."),
        ("List the colors of the rainbow in order please", "rainbow colors the order in the list of"),
        ("one two three four five six", "two three four"),
    ]
    instructions, responses = [p[0] for p in pairs], [p[1] for p in pairs]
    relaxed = ResponseCopiesInstructionFilter.Params(check_starts_with=False, max_token_overlap=None)
    # Without the starts-with check, row 0 shares 6 of 7 distinct tokens (0.857): not flagged anyway.
    assert reasons(
        ResponseCopiesInstructionFilter(relaxed), instruction=instructions, response=responses
    ) == [
        None,
        None,
        None,
    ]
    short = ResponseCopiesInstructionFilter.Params(min_words=3, check_contained=True)
    assert reasons(ResponseCopiesInstructionFilter(short), instruction=instructions, response=responses)[
        2
    ] == ("response is contained in instruction")
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        ResponseCopiesInstructionFilter.Params(max_token_overlap=1.5)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ResponseCopiesInstructionFilter.Params(min_words=0)


def test_response_copies_instruction_huge_rows():
    text = "word " * (BIG // 5)
    op = ResponseCopiesInstructionFilter()
    assert reasons(
        op, instruction=[text, "short question here"], response=[text + "!", "x " * (BIG // 2)]
    ) == [
        "response equals instruction",
        None,
    ]


# --- conversation_format_filter ---


def turn(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    [turn("user", "hi"), turn("assistant", "hello")],
    [],
    None,
    [turn("system", "be nice"), turn("user", "q"), turn("user", "q2")],
    [turn("user", "q"), turn("assistant", "  ")],
    [turn("user", "q"), turn("bot", "a")],
    [turn("user", "q"), turn("assistant", "a"), turn("system", "x")],
    [turn("assistant", "a")],
    [turn("user", "q")],
    [
        turn("system", "s"),
        turn("user", "日本語 😀"),
        turn("assistant", "はい"),
        turn("user", "q"),
        turn("assistant", "a"),
    ],
    [turn(None, "q"), turn("assistant", "a")],
    [turn("user", None), turn("assistant", "a")],
    [None, turn("assistant", "a")],
]


def check(op, conversations, column="messages"):
    return reasons(op, **{column: pa.array(conversations)})


def test_conversation_format_hand_computed():
    assert check(ConversationFormatFilter(), CONVERSATIONS) == [
        None,
        "no messages",
        "`messages` is null",
        "turn 2: expected assistant",
        "turn 1: empty content",
        "turn 1: role not allowed",
        "turn 2: system message not first",
        "turn 0: expected user",
        "last turn not assistant",
        None,
        "turn 0: role not allowed",
        "turn 0: empty content",
        "turn 0: role not allowed",  # a null message has no role
    ]


def test_conversation_format_params():
    tool = [turn("user", "q"), turn("assistant", "call"), turn("tool", "42"), turn("assistant", "it is 42")]
    op = ConversationFormatFilter(
        ConversationFormatFilter.Params(allowed_roles=["user", "assistant", "tool"])
    )
    twice = [turn("user", "q"), turn("assistant", "a"), turn("assistant", "b")]
    assert check(op, [tool, [turn("system", "s"), turn("user", "q"), turn("assistant", "a")], twice]) == [
        None,
        "turn 0: role not allowed",
        "turn 2: expected user",
    ]
    required = ConversationFormatFilter(ConversationFormatFilter.Params(system="required"))
    assert check(required, CONVERSATIONS[:1] + CONVERSATIONS[9:10]) == [
        "turn 0: missing system message",
        None,
    ]
    forbidden = ConversationFormatFilter(ConversationFormatFilter.Params(system="forbidden"))
    assert check(forbidden, CONVERSATIONS[9:10]) == ["turn 0: system message not allowed"]
    loose = ConversationFormatFilter(
        ConversationFormatFilter.Params(
            require_alternation=False, require_final_assistant=False, allow_empty_content=True
        )
    )
    assert check(loose, [CONVERSATIONS[i] for i in (3, 4, 7, 8)]) == [None, None, None, None]


def test_conversation_format_custom_fields_and_errors():
    op = ConversationFormatFilter(
        ConversationFormatFilter.Params(role_field="from", content_field="value"), inputs={"messages": "conv"}
    )
    sharegpt = [[{"from": "user", "value": "q"}, {"from": "assistant", "value": "a"}], None]
    assert check(op, sharegpt, column="conv") == [None, "`conv` is null"]
    with pytest.raises(DataflowError, match="have no `from` field"):
        check(op, [[turn("user", "q")]], column="conv")
    with pytest.raises(DataflowError, match="must be a list of \\{role, content\\} structs but is string"):
        check(ConversationFormatFilter(), ["not a list"])
    with pytest.raises(
        DataflowError, match="the `content` of messages in `messages` must be text but is int64"
    ):
        check(ConversationFormatFilter(), [[{"role": "user", "content": 1}]])
    assert check(ConversationFormatFilter(), pa.nulls(2)) == ["`messages` is null"] * 2


def test_conversation_format_large_list_and_huge_content():
    messages = pa.array(
        [[turn("user", "q" * BIG), turn("assistant", "a")], [turn("user", "q")]],
        pa.large_list(pa.struct([("role", pa.string()), ("content", pa.large_string())])),
    )
    assert check(ConversationFormatFilter(), messages) == [None, "last turn not assistant"]


def test_conversation_format_validation():
    with pytest.raises(ValidationError, match="`system: required` needs `system` in `allowed_roles`"):
        ConversationFormatFilter.Params(allowed_roles=["user", "assistant"], system="required")
    with pytest.raises(ValidationError, match="needs `assistant` in `allowed_roles`"):
        ConversationFormatFilter.Params(allowed_roles=["user"])
    with pytest.raises(ValidationError, match="a role is listed twice"):
        ConversationFormatFilter.Params(allowed_roles=["user", "user", "assistant"])
    with pytest.raises(ValidationError, match="'optional', 'required' or 'forbidden'"):
        ConversationFormatFilter.Params(system="maybe")


# --- end to end through the CLI ---


def test_sft_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = [turn("user", "What is 2+2?"), turn("assistant", "4")]
    rows = [
        {"instruction": "What is 2+2?", "response": "2 + 2 equals 4.", "messages": ok},
        {"instruction": "Tell me a joke", "response": "", "messages": ok},
        {
            "instruction": "Write a poem",
            "response": "As an AI language model, I cannot feel.",
            "messages": ok,
        },
        {
            "instruction": "Repeat after me please now",
            "response": "Repeat after me please now",
            "messages": ok,
        },
        {"instruction": "Say hi", "response": "Hi there!", "messages": [turn("assistant", "Hi")]},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: sft\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl}\nstages:\n"
        "  - {name: lengths, op: instruction_response_evaluator}\n"
        "  - {name: bounds, op: instruction_response_filter, params: {min_response: 1}}\n"
        "  - {name: refusals, op: refusal_filter}\n"
        "  - {name: copies, op: response_copies_instruction_filter}\n"
        "  - {name: chat, op: conversation_format_filter}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["rows_read"], stats["rows_written"]) == (5, 1)
    kept = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert kept[0]["response"] == "2 + 2 equals 4." and kept[0]["response_words"] == 5
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "o.rejects.jsonl").read_text().splitlines()
    ]
    assert {(r["_id"], r["_stage"], r["_reason"]) for r in rejects} == {
        ("1", "bounds", "response_words < 1"),
        ("2", "refusals", "ai_disclaimer phrase"),
        ("3", "copies", "response equals instruction"),
        ("4", "chat", "turn 0: expected user"),
    }
