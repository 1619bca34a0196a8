import pyarrow as pa
import pytest
from dataflow_operators.text.exact_dedup import ExactDedupFilter, normalize_key, row_keys
from pydantic import ValidationError

from dataflow_cli.operator import Batch, Verdict

BIG = 5 * 1024 * 1024


def dedup(columns=("text",), normalize=False):
    return ExactDedupFilter(ExactDedupFilter.Params(columns=list(columns), normalize=normalize))


def batch(ids, **columns):
    return Batch(pa.table({**columns, "_id": ids}))


def results(op, batches):
    out = []
    for verdict in op.process_all(batches):
        assert isinstance(verdict, Verdict)
        keep = pa.array(verdict.keep)
        assert keep.type == pa.bool_() and keep.null_count == 0
        out.append(
            (
                keep.to_pylist(),
                pa.array(verdict.reason, pa.string()).to_pylist(),
                pa.array(verdict.detail, pa.string()).to_pylist(),
            )
        )
    return out


def test_first_occurrence_kept_later_ones_dropped_nulls_are_equal():
    texts = ["a", "b", "a", None, None, "", "", "a"]
    ids = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    [(keep, reason, detail)] = results(dedup(), [batch(ids, text=texts)])
    assert keep == [True, True, False, True, False, True, False, False]
    assert reason == [None, None, "duplicate", None, "duplicate", None, "duplicate", "duplicate"]
    assert detail == [
        None,
        None,
        "duplicate of _id r0",
        None,
        "duplicate of _id r3",
        None,
        "duplicate of _id r5",
        "duplicate of _id r0",
    ]


def test_across_batch_boundaries():
    op = dedup()
    first = batch(["1", "2"], text=["x", "y"])
    second = batch(["3", "4", "5"], text=["y", "z", "x"])
    third = batch([], text=pa.array([], pa.string()))
    assert results(op, [first, second, third]) == [
        ([True, True], [None, None], [None, None]),
        (
            [False, True, False],
            ["duplicate", None, "duplicate"],
            ["duplicate of _id 2", None, "duplicate of _id 1"],
        ),
        ([], [], []),
    ]


def test_each_run_starts_fresh():
    op = dedup()
    assert results(op, [batch(["1"], text=["x"])])[0][0] == [True]
    assert results(op, [batch(["2"], text=["x"])])[0][0] == [True]


def test_verdicts_stream_lazily_in_order():
    seen = []

    def batches():
        for i in range(3):
            seen.append(i)
            yield batch([str(i)], text=["same"])

    verdicts = dedup().process_all(batches())
    assert pa.array(next(verdicts).keep).to_pylist() == [True]
    assert seen == [0]
    assert [pa.array(v.keep).to_pylist() for v in verdicts] == [[False], [False]]


def test_several_columns_are_encoded_unambiguously():
    op = dedup(columns=["a", "b"])
    a = ["a", "ab", None, "", "x", "x", "\x00", "\x01"]
    b = ["bc", "c", "x", "x", None, "", "", ""]
    [(keep, _, _)] = results(op, [batch([str(i) for i in range(len(a))], a=a, b=b)])
    assert keep == [True] * len(a)
    [(keep, _, detail)] = results(op, [batch(["0", "1", "2"], a=["a", "a", "a"], b=[None, None, "x"])])
    assert keep == [True, False, True]
    assert detail == [None, "duplicate of _id 0", None]


def test_key_encoding():
    keys = row_keys([pa.array(["ab", None, ""]), pa.array(["c", "d", None])], normalize=False)
    assert keys.to_pylist() == [b"\x012:ab\x011:c", b"\x00\x011:d", b"\x010:\x00"]
    # Byte length, not character length.
    assert row_keys([pa.array(["é😀"])], normalize=False).to_pylist() == ["\x016:é😀".encode()]


def test_exact_comparison_is_case_and_unicode_sensitive():
    texts = ["Hello", "hello", "caf\u00e9", "cafe\u0301", "Hello ", "Hello"]
    [(keep, _, _)] = results(dedup(), [batch([str(i) for i in range(6)], text=texts)])
    assert keep == [True, True, True, True, True, False]


def test_normalize_casefolds_and_collapses_whitespace():
    texts = [
        "Hello  World",
        " hello world ",
        "HELLO\tWORLD\n",
        "Straße",
        "STRASSE",
        "hello\u3000world",
        None,
        "x",
    ]
    op = dedup(normalize=True)
    [(keep, _, detail)] = results(op, [batch([str(i) for i in range(len(texts))], text=texts)])
    assert keep == [True, False, False, True, False, False, True, True]
    assert detail[1:3] == ["duplicate of _id 0", "duplicate of _id 0"]
    assert detail[4] == "duplicate of _id 3"
    assert normalize_key("  A\u00a0B\n\nC ") == "a b c"


def test_normalize_leaves_non_text_columns_alone():
    op = dedup(columns=["text", "n"], normalize=True)
    [(keep, _, _)] = results(op, [batch(["0", "1", "2"], text=["A", "a", "a"], n=[1, 1, 2])])
    assert keep == [True, False, True]


def test_non_text_columns():
    op = dedup(columns=["n", "tags", "meta", "when"])
    n = [1, 1, 1, None, None, 2]
    tags = [["a", "b"], ["a", "b"], ["b", "a"], None, None, []]
    meta = [{"k": 1}, {"k": 1}, {"k": 1}, None, None, {"k": None}]
    when = pa.array([0, 0, 0, None, None, 5], pa.timestamp("s"))
    [(keep, _, detail)] = results(
        op, [batch([str(i) for i in range(6)], n=n, tags=tags, meta=meta, when=when)]
    )
    assert keep == [True, False, True, True, False, True]
    assert detail[1] == "duplicate of _id 0" and detail[4] == "duplicate of _id 3"
    op = dedup(columns=["d", "f", "bin"])
    [(keep, _, _)] = results(
        op,
        [
            batch(
                ["0", "1", "2"],
                d=pa.array(["x", "x", "y"]).dictionary_encode(),
                f=[0.5, 0.5, 0.5],
                bin=pa.array([b"\x00", b"\x00", b"\x00"], pa.binary()),
            )
        ],
    )
    assert keep == [True, False, True]


def test_huge_rows():
    big = "x" * BIG
    [(keep, _, detail)] = results(dedup(), [batch(["0", "1", "2"], text=[big, big + "y", big])])
    assert keep == [True, True, False]
    assert detail[2] == "duplicate of _id 0"


def test_unicode_and_large_string_columns():
    texts = pa.array(["日本語", "😀", "日本語", "😀"], pa.large_string())
    [(keep, _, _)] = results(dedup(), [batch(["0", "1", "2", "3"], text=texts)])
    assert keep == [True, True, False, False]


def test_column_flow_and_scope():
    op = dedup(columns=["q", "a"])
    assert op.scope == "global"
    assert op.kind == "filter"
    assert op.required_columns() == ["q", "a"]
    assert op.written_columns() == []
    assert op.transform_schema({"q": "string", "a": "string"}) == {"q": "string", "a": "string"}
    with pytest.raises(TypeError, match="global operator"):
        op.process(batch(["0"], q=["x"], a=["y"]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"columns": []}, "at least 1 item"),
        ({"columns": ["a", "a"]}, "column `a` is listed twice"),
        ({"columns": [""]}, "a column name must not be empty"),
        ({}, "Field required"),
        ({"columns": ["a"], "keep": "last"}, "Extra inputs are not permitted"),
    ],
)
def test_params_validation(params, message):
    with pytest.raises(ValidationError, match=message):
        ExactDedupFilter.Params(**params)
