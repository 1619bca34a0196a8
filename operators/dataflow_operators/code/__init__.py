"""Code operators: sandboxed test execution and verdicts, test-quality guard, code SFT synthesis
(instructions, solutions, tests, back-translation, LLM quality judge) and rule-based filters for
pre-training code."""
