"""Throughput of the quality operators on synthetic web-like documents (~1.3 kB each).

    python bench/quality.py [--docs 10000] [--repeat 3]

Builds `--docs` documents (prose sentences from a small Zipf-like vocabulary, with some
navigation/boilerplate lines, repeated lines, bullets, non-ASCII words, a few CJK and emoji
passages), then times `op.process(batch)` of every quality operator on one batch of them (the SFT
operators on instruction/response/messages columns derived from the same documents),
single-threaded, and prints docs/s (best of `--repeat`, CPU time of the calling thread, so other
load on the machine inflates the numbers less than wall time would). The goal on such documents
is >= 20k docs/s for word counts, the special-character ratio and the character repetition ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataflow_cli.operator import Batch  # noqa: E402

COMMON = (
    "the of and to a in is that for it as was with be by on not he I this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no will can more "
    "about said up out my them what some time could into only other then these two may first new like"
).split()
CONTENT = (
    "data model training quality filter pipeline city market government research company students "
    "water energy health school music service business family information development community "
    "program software product weather history science technology project report design network "
    "security experience analysis café naïve über 2024 15 3.5% $20"
).split()
BOILERPLATE = [
    "Home | About | Contact",
    "Share this article",
    "Click here to subscribe to our newsletter",
    "All rights reserved.",
    "Read more...",
    "• Related posts",
]


def make_docs(count: int, seed: int = 0, mean_chars: int = 1300) -> list[str]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(COMMON))]
    docs = []
    for _ in range(count):
        target = max(100, int(rng.gauss(mean_chars * 0.88, 300)))
        parts: list[str] = []
        size = 0
        if rng.random() < 0.4:
            parts.append(rng.choice(BOILERPLATE))
        while size < target:
            words = [
                rng.choices(COMMON, weights)[0] if rng.random() < 0.55 else rng.choice(CONTENT)
                for _ in range(rng.randint(5, 22))
            ]
            sentence = " ".join(words)
            parts.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!:"))
            if rng.random() < 0.08:
                parts.append(rng.choice(BOILERPLATE))
            size += len(parts[-1]) + 1
        text = ""
        for part in parts:
            text += part + rng.choice([" ", " ", " ", "\n", "\n\n"])
        if rng.random() < 0.03:
            text += "数据质量很重要，我们的模型需要干净的文本。" * 2
        if rng.random() < 0.03:
            text += " Great job 😀👍"
        docs.append(text.strip())
    return docs


def operators():
    from dataflow_operators.sft.conversation import ConversationFormatFilter
    from dataflow_operators.sft.instruction_response import (
        InstructionResponseEvaluator,
        InstructionResponseFilter,
    )
    from dataflow_operators.sft.refusal import RefusalFilter
    from dataflow_operators.sft.response_copies import ResponseCopiesInstructionFilter
    from dataflow_operators.text.c4 import C4LinesRefiner, C4RulesFilter
    from dataflow_operators.text.fineweb import FinewebRulesFilter
    from dataflow_operators.text.flagged_words import FlaggedWordsEvaluator
    from dataflow_operators.text.gopher import GopherRulesFilter
    from dataflow_operators.text.length import LengthEvaluator
    from dataflow_operators.text.quality import CharRatioEvaluator, StructureEvaluator, WordStatsEvaluator
    from dataflow_operators.text.repetition import RepetitionEvaluator

    def op(cls, **params):
        return cls(cls.Params(**params))

    return {
        "length_evaluator (words)": LengthEvaluator(),
        "word_stats_evaluator signals=[words]": op(WordStatsEvaluator, signals=["words"]),
        "char_ratio_evaluator signals=[special_char_ratio]": op(
            CharRatioEvaluator, signals=["special_char_ratio"]
        ),
        "char_ratio_evaluator (all 5)": op(CharRatioEvaluator),
        "repetition_evaluator signals=[char_rep_ratio]": op(RepetitionEvaluator, signals=["char_rep_ratio"]),
        "repetition_evaluator signals=[word_rep_ratio]": op(RepetitionEvaluator, signals=["word_rep_ratio"]),
        "repetition_evaluator lines+paragraphs (4)": op(
            RepetitionEvaluator,
            signals=["dup_line_ratio", "dup_para_ratio", "dup_line_char_ratio", "dup_para_char_ratio"],
        ),
        "repetition_evaluator (all 15)": op(RepetitionEvaluator),
        "word_stats_evaluator (all 7)": op(WordStatsEvaluator),
        "structure_evaluator (all 8)": op(StructureEvaluator),
        "flagged_words_evaluator": op(FlaggedWordsEvaluator),
        "c4_lines_refiner": op(C4LinesRefiner),
        "c4_rules_filter": op(C4RulesFilter),
        "fineweb_rules_filter": op(FinewebRulesFilter),
        "gopher_rules_filter": op(GopherRulesFilter),
        "instruction_response_evaluator": InstructionResponseEvaluator(),
        "instruction_response_filter": op(InstructionResponseFilter, max_ratio=50),
        "refusal_filter": op(RefusalFilter),
        "response_copies_instruction_filter": op(ResponseCopiesInstructionFilter),
        "conversation_format_filter": op(ConversationFormatFilter),
    }


def make_table(docs: list[str]) -> pa.Table:
    """The documents as `text`, plus SFT columns built from them: `instruction` (the first
    sentence), `response` (the document) and `messages` (system, user, assistant turns)."""
    instructions = [doc.split(". ")[0][:200] + "?" for doc in docs]
    messages = [
        [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": doc},
        ]
        for question, doc in zip(instructions, docs, strict=True)
    ]
    return pa.table(
        {
            "text": docs,
            "instruction": instructions,
            "response": docs,
            "messages": messages,
            "_id": [str(i) for i in range(len(docs))],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    docs = make_docs(args.docs)
    table = make_table(docs)
    mean = sum(len(d.encode()) for d in docs) / len(docs)
    print(f"{len(docs)} docs, mean {mean:.0f} bytes; best of {args.repeat}, thread CPU time")
    for label, op in operators().items():
        batch = Batch(table, op.input_columns)
        op.process(batch)  # warm-up (lazy tables)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.thread_time()
            op.process(batch)
            best = min(best, time.thread_time() - start)
        print(f"{label:55s} {len(docs) / best:10,.0f} docs/s")


if __name__ == "__main__":
    main()
