"""Write the question of a multi-hop chain, whose answer is fixed by the chain."""

from __future__ import annotations

from typing import Any

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError, json_object
from dataflow_cli.operator import Generator, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators._lib.qa_text import contains_answer
from dataflow_operators.rag._json import TEXT, object_schema, text_field


class RagMultihopQuestionGenerator(LLMOperator, Generator):
    """Write one question from a chain of hops (from `rag_hop_pair_generator`) that needs every hop.

    The model sees each hop's question and answer and the composition, and writes the question
    in strict JSON (`{"question": "..."}`); the answer is not the model's to choose: it is the
    chain's gold answer. The question is checked by rule, so a shortcut never passes: one that
    names its answer is rejected ("composed question names its answer"; comparisons excepted,
    whose answer is one of the two subjects they must name), and a bridge question that names
    hop 1's answer, which would make hop 1 unnecessary, is rejected ("composed question names
    the bridge entity"). An answer that is not such an object rejects the row with the raw text.
    Whether the question really needs its documents is for `rag_answerability_filter`.

    Inputs:
        hops: the chain, a list of {doc_id, title, question, answer, support}.
        composition: `bridge`, `comparison` or `intersection`.
        answer: the chain's gold answer.
    Outputs:
        question: the composed question.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "rag_multihop_question_generator"
    inputs = {
        "hops": Port("the chain: a list of {doc_id, title, question, answer, support}"),
        "composition": Port("bridge, comparison or intersection"),
        "answer": Port("the chain's gold answer"),
    }
    outputs = {"question": Port("the composed question")}
    default_template = default_prompt("rag_multihop_question_generator", domain="rag")
    Params = LLMParams

    def json_schema(self) -> dict[str, Any]:
        return object_schema(question=TEXT)

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, str]:
        question = text_field(json_object(text), "question")
        if row["composition"] != "comparison" and contains_answer(question, row["answer"]):
            raise ParseError("composed question names its answer", bare=True)
        hops = row["hops"] or []
        if row["composition"] == "bridge" and hops and contains_answer(question, hops[0]["answer"]):
            raise ParseError("composed question names the bridge entity", bare=True)
        return {"question": question}
