"""`dataflow estimate`: cheap row counts, a seeded sample through every stage, projections in
which keep rates feed later stages, prices (spec, unknown), and answers the real run reuses."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataflow_cli.cost.estimate import count_rows
from dataflow_cli.spec.build import load_spec
from tests.conftest import write_jsonl

SPEC = """version: 1
name: est
input: {{path: {input}, batch_size: 16}}
output: {{path: out/est.jsonl}}
backends:
  default: {{provider: {provider}{backend}}}
  unpriced: {{provider: fake, reply_template: "more {{{{ prompt }}}}"}}
stages:
  - name: small
    op: range_filter
    inputs: {{value: n}}
    params: {{max: 24}}
  - name: answer
    op: prompted_generator
    params: {{template: "Say {{{{ topic }}}}", max_tokens: 16}}
    outputs: {{text: answer}}
  - name: more
    op: prompted_generator
    backend: unpriced
    params: {{template: "Again {{{{ answer }}}}"}}
    outputs: {{text: more}}
"""

FAKE = ', reply_template: "one two three", price: {input_per_mtok: 10, output_per_mtok: 20}'


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def make_spec(env: Path, rows: int = 100, provider: str = "fake", backend: str = FAKE) -> Path:
    write_jsonl(env / "in.jsonl", [{"topic": f"t{i}", "n": i % 50} for i in range(rows)])
    spec = env / "spec.yaml"
    spec.write_text(SPEC.format(input="in.jsonl", provider=provider, backend=backend))
    return spec


def test_row_counts_come_from_metadata_and_line_counts(env):
    pq.write_table(pa.table({"x": list(range(1234))}), env / "a.parquet", row_group_size=100)
    (env / "b.jsonl").write_text('\n{"x": 1}\n\n\n{"x": 2}\n{"x": 3}')  # blank lines, no final newline
    (env / "c.csv").write_text("x\n1\n2\n")
    for name, expected in [("a.parquet", 1234), ("b.jsonl", 3), ("c.csv", 2)]:
        spec = env / f"{name}.yaml"
        spec.write_text(
            f"version: 1\nname: c\ninput: {{path: {name}}}\noutput: {{path: o.jsonl}}\nstages: [{{name: s, op: text_normalize_refiner, inputs: {{text: x}}}}]\n"
        )
        assert count_rows(load_spec(spec, check_columns=False)) == expected
    spec = env / "a.parquet.yaml"
    assert count_rows(load_spec(spec, ["input.limit=10"], check_columns=False)) == 10


def test_projection_chains_keep_rates_prices_tokens_and_unknown_cost(env, cli):
    spec = make_spec(env)
    result = cli.json("estimate", spec, "--sample", "40", "--seed", "3")
    assert result["input_rows"] == 100 and result["sample_rows"] == 40
    small, answer, more = result["stages"]
    # The filter keeps n <= 24 (half of the rows); its keep rate in the sample feeds the next stages.
    assert small["sample"]["rows_in"] == 40
    keep = small["sample"]["rows_out"] / 40
    assert small["keep_rate"] == pytest.approx(keep, abs=1e-4)
    assert answer["projected"]["rows_in"] == round(100 * keep)
    assert answer["projected"]["requests"] == round(100 * keep)  # one request per row
    # Fake tokens are words: "Say tN" is 2 prompt tokens, "one two three" 3 completion tokens.
    assert answer["sample"]["prompt_tokens"] == 2 * answer["sample"]["rows_in"]
    assert answer["projected"]["prompt_tokens"] == round(2 * 100 * keep)
    assert answer["projected"]["completion_tokens"] == round(3 * 100 * keep)
    cost = (2 * 10 + 3 * 20) * 100 * keep / 1e6
    assert answer["projected"]["cost_usd"] == pytest.approx(cost, rel=1e-3)
    assert answer["price"] == {
        "input_per_mtok": 10.0,
        "output_per_mtok": 20.0,
        "source": "spec",
        "batch": False,
    }
    # No price for the `fake` backend `unpriced`: unknown, never 0, and so is the total.
    assert more["price"] is None and more["projected"]["cost_usd"] is None
    assert result["total"]["cost_usd"] is None and result["total"]["cost_unknown_stages"] == ["more"]
    assert result["total"]["cost_usd_known_part"] == pytest.approx(cost, rel=1e-3)
    assert result["total"]["requests"] == round(2 * 100 * keep)
    # The same seed draws the same rows; the table for people goes to stderr.
    again = cli("estimate", spec, "--sample", "40", "--seed", "3", "--json")
    repeated = json.loads(again.stdout)["stages"][0]["sample"]
    assert {k: v for k, v in repeated.items() if k != "seconds"} == {
        k: v for k, v in small["sample"].items() if k != "seconds"
    }
    assert "estimate for 100 input rows" in again.stderr and "cost unknown" in again.stderr


def test_wall_time_is_bound_by_the_rate_limits(env, cli):
    spec = make_spec(env, backend=FAKE + ", rpm: 60, max_concurrency: 8")
    result = cli.json("estimate", spec, "--sample", "10")
    default = result["backends"]["default"]
    projected = result["stages"][1]["projected"]["requests"]
    assert default["bound_by"] == "rpm" and default["seconds"] == pytest.approx(projected, abs=0.1)
    assert result["total"]["seconds"] >= default["seconds"]


def test_the_real_run_reuses_the_sample_answers(openai_server, env, cli):
    spec = make_spec(
        env, provider="openai", backend=f", model: test-model, api_base: {openai_server.base_url}"
    )
    result = cli.json("estimate", spec, "--sample", "30")
    sampled = len(openai_server.chat_requests)
    assert sampled == result["stages"][1]["sample"]["sent"] > 0
    stats = cli.json("run", spec)
    answer = stats["stages"][1]["llm"]
    assert answer["cache_hits"] == sampled and answer["calls"] == answer["requests"] - sampled
    assert len(openai_server.chat_requests) == answer["requests"]  # no request was sent twice


def test_retries_seen_on_the_sample_scale_the_projected_calls(env, cli):
    failing = FAKE + ', backoff: 0, failures: [{match: "Say", kind: server, times: 1}]'
    spec = make_spec(env, backend=failing)
    answer = cli.json("estimate", spec, "--sample", "30")["stages"][1]
    assert answer["sample"]["sent"] == 2 * answer["sample"]["requests"]  # each prompt failed once
    assert answer["projected"]["calls"] == pytest.approx(2 * answer["projected"]["requests"], abs=1)
    # A failed call returns no tokens: the tokens are those of the answers.
    assert answer["projected"]["prompt_tokens"] == pytest.approx(2 * answer["projected"]["requests"], abs=1)
