import pyarrow as pa
import pytest
from dataflow_operators.core.template import TemplateGenerator, columns_of
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch

QA = "Q: {{ question }}\nA: {{ answer }}"


def generator(template=QA, outputs=None, **params):
    return TemplateGenerator(TemplateGenerator.Params(template=template, **params), outputs=outputs)


def render(op, **columns):
    n = len(next(iter(columns.values()))) if columns else 2
    result = op.process(Batch(pa.table({**columns, "_id": [f"id{i}" for i in range(n)]})))
    assert set(result) == {"text"}
    assert pa.array(result["text"]).type == pa.string()
    return result["text"].to_pylist()


def test_renders_each_row():
    op = generator()
    assert render(op, question=["2+2?", "日本語?"], answer=["4", "はい 😀"]) == [
        "Q: 2+2?\nA: 4",
        "Q: 日本語?\nA: はい 😀",
    ]


def test_printing_a_null_value_gives_a_null_row_by_default():
    op = generator()
    assert render(op, question=["q1", None, "q3", ""], answer=["a1", "a2", None, ""]) == [
        "Q: q1\nA: a1",
        None,
        None,
        "Q: \nA: ",
    ]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% if c %}C: {{ c }}\n{% endif %}Q", ["C: x\nQ", "Q"]),
        ("{{ c | default('n/a') }}", ["x", "n/a"]),
        ("{{ 'yes' if c is defined else 'no' }}", ["yes", "no"]),
        ("{% for ch in c %}{{ ch }}.{% endfor %}", ["x.", ""]),
        ("{{ c | upper }}", ["X", None]),
        ("{{ c ~ '!' }}", ["x!", None]),
        ("{{ c.attr }}", [None, None]),  # "x".attr is undefined too, but only a null silently nulls
        ("{{ c | length }}", ["1", "0"]),
    ],
)
def test_a_null_value_can_be_tested_or_defaulted(template, expected):
    op = generator(template)
    if template == "{{ c.attr }}":
        with pytest.raises(DataflowError, match="row _id id0"):
            render(op, c=["x", None])
        assert render(op, c=[None, None]) == expected
    else:
        assert render(op, c=["x", None]) == expected


def test_computing_with_a_null_gives_a_null_row():
    op = generator("{{ n + 1 }}")
    assert render(op, n=[1, None]) == ["2", None]


def test_null_as_empty():
    op = generator(null_as_empty=True)
    assert render(op, question=[None, "q"], answer=["a", None]) == ["Q: \nA: a", "Q: q\nA: "]


def test_non_text_values_and_expressions():
    op = generator("{{ n + 1 }} {{ tags | join(',') }} {{ meta.k }} {{ '%.1f' | format(score) }}")
    assert render(op, n=[1, 2], tags=[["a", "b"], []], meta=[{"k": "v"}, {"k": "w"}], score=[0.25, 1.0]) == [
        "2 a,b v 0.2",
        "3  w 1.0",
    ]


def test_columns_are_the_template_variables_without_jinja_globals():
    assert columns_of(QA) == ["answer", "question"]
    assert columns_of("{% for i in range(n) %}{{ i }}{{ loop.index }}{% endfor %}") == ["n"]
    assert columns_of("{% set x = 1 %}{{ x }}{{ y }}") == ["y"]
    op = generator("{% for i in range(n) %}{{ i }}{% endfor %}")
    assert render(op, n=[3, 0]) == ["012", ""]


def test_a_template_without_variables():
    op = generator("constant\n")
    assert op.required_columns() == []
    assert render(op) == ["constant\n", "constant\n"]


def test_column_flow():
    op = generator(outputs={"text": "prompt"})
    assert op.required_columns() == ["answer", "question"]
    assert op.written_columns() == ["prompt"]
    assert op.transform_schema({"question": "string", "answer": "string"}) == {
        "question": "string",
        "answer": "string",
        "prompt": "string",
    }


def test_huge_value():
    big = "x" * (5 * 1024 * 1024)
    op = generator("<{{ text }}>")
    assert render(op, text=[big]) == [f"<{big}>"]


def test_a_render_error_names_the_row():
    op = generator("{{ items[1] }}")
    with pytest.raises(
        DataflowError, match=r"template failed on row _id id1: UndefinedError: .*no element 1"
    ):
        render(op, items=[["a", "b"], ["a"]])


def test_nested_nulls_are_plain_none():
    # Known limitation: only top-level column nulls are tracked; a null inside a struct is
    # Python None and prints as "None" (test it with `is none` in the template).
    op = generator("{{ meta.k }}|{{ meta.k is none }}")
    assert render(op, meta=[{"k": "v"}, {"k": None}]) == ["v|False", "None|True"]


def test_the_sandbox_blocks_python_internals():
    op = generator("{{ text.__class__.__mro__ }}")
    with pytest.raises(DataflowError, match="template failed on row _id id0"):
        render(op, text=["x"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"template": "{{ question "}, "template syntax error on template line 1"),
        ({"template": "ok\n{% for x in y %}"}, "template syntax error on template line 2"),
        ({"template": ""}, "at least 1 character"),
        ({}, "Field required"),
        ({"template": "x", "strict": True}, "Extra inputs are not permitted"),
    ],
)
def test_params_validation(params, message):
    with pytest.raises(ValidationError, match=message):
        TemplateGenerator.Params(**params)
