"""Coverage-guided fuzzing of the parsers (atheris). See docs/testing.md#fuzzing."""
