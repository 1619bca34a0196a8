"""Score predicted answers against gold answers: normalized exact match and token F1."""

from __future__ import annotations

import pyarrow as pa

from dataflow_cli.operator import Batch, Evaluator, NoParams, Port
from dataflow_operators._lib.qa_text import exact_match, gold_list, token_f1


class RagAnswerScoreEvaluator(Evaluator):
    """Score each predicted answer against one or more gold answers by exact match and token F1.

    The definition is SQuAD's (Rajpurkar et al. 2016): both answers are lowercased, stripped of
    punctuation (any Unicode punctuation here), of the articles "a", "an" and "the" and of extra
    whitespace; exact match is equality of what remains, F1 the harmonic mean of precision and
    recall of its words counted as a multiset, and the best score over the gold answers counts.
    `gold` is a string or a list of strings. A null prediction, or no gold answer, scores null.

    Inputs:
        prediction: the answer to score.
        gold: the gold answer, or a list of acceptable gold answers.
    Outputs:
        exact_match: the normalized prediction equals a normalized gold answer.
        f1: best token F1 against the gold answers, from 0 to 1.
    Params:
        (none)
    """

    name = "rag_answer_score_evaluator"
    inputs = {"prediction": Port("the answer to score"), "gold": Port("gold answer or list of gold answers")}
    outputs = {
        "exact_match": Port("the normalized prediction equals a normalized gold answer", "bool"),
        "f1": Port("best token F1 against the gold answers (0-1)", "float64"),
    }
    Params = NoParams

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        em: list[bool | None] = []
        f1: list[float | None] = []
        for prediction, gold in zip(batch.values("prediction"), batch.values("gold"), strict=True):
            golds = gold_list(gold)
            if not isinstance(prediction, str) or not golds:
                em.append(None)
                f1.append(None)
            else:
                em.append(exact_match(prediction, golds))
                f1.append(token_f1(prediction, golds))
        return {"exact_match": pa.array(em, pa.bool_()), "f1": pa.array(f1, pa.float64())}
