"""Two small operators written the way a plugin author would."""

import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Evaluator, Port, Refiner


class ShoutRefiner(Refiner):
    """Upper-case a text column and add an ending.

    Inputs:
      text: the column to rewrite.
    Params:
      suffix: appended to every value.
    """

    name = "shout_refiner"
    inputs = {"text": Port("Text to upper-case")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        suffix: str = Field("!", description="Appended to every value.")

    def refine(self, batch):
        upper = pc.utf8_upper(batch.column("text"))
        return {"text": pc.binary_join_element_wise(upper, self.params.suffix, "")}


class VowelCountEvaluator(Evaluator):
    """Count ASCII vowels in a text column.

    Inputs:
      text: the column to read.
    Outputs:
      vowels: number of a/e/i/o/u (any case).
    """

    name = "vowel_count_evaluator"
    inputs = {"text": Port("Text to read")}
    outputs = {"vowels": Port("Vowel count", "int64")}

    def evaluate(self, batch):
        return {"vowels": pc.count_substring_regex(batch.column("text"), "(?i)[aeiou]")}
