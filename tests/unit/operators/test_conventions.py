"""Every built-in operator follows the registry, docstring and params conventions."""

import pytest

from dataflow_cli import registry
from tests.support.conventions import check_conventions

# Every operator this distribution registers, so a new built-in is checked automatically.
BUILTINS = {name for name, entry in registry.entries().items() if entry.distribution == "dataflow-cli"}


def test_builtins_are_registered():
    assert {"range_filter", "minhash_dedup_filter", "prompted_generator", "language_filter"} <= BUILTINS


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_conventions(name):
    check_conventions(registry.load(name), name)


def test_a_missing_section_is_named_with_class_and_file():
    from dataflow_cli.operator import Evaluator, Port

    class CharEvaluator(Evaluator):
        """Count characters.

        Inputs:
            text: the text.
        Params:
            (none)
        """

        name = "char_evaluator"
        inputs = {"text": Port("the text")}
        outputs = {"chars": Port("characters", "int64")}

    with pytest.raises(AssertionError) as err:
        check_conventions(CharEvaluator)
    assert str(err.value).startswith(
        "class `CharEvaluator` in tests/unit/operators/test_conventions.py: "
        "the docstring has no `Outputs:` section (a line of its own)"
    )
    CharEvaluator.__doc__ = CharEvaluator.__doc__.replace("Params:", "Outputs:\n    chars: count.\nParams:")
    check_conventions(CharEvaluator)
    CharEvaluator.__doc__ = CharEvaluator.__doc__.replace("Count characters.", "Counts characters.")
    with pytest.raises(
        AssertionError, match=r"^class `CharEvaluator` in README.md: .*\(`Count`, not `Counts`\)"
    ):
        check_conventions(CharEvaluator, where="README.md")
