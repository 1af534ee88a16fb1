"""The README's settings table is generated from the code; this keeps the two in sync."""

from pathlib import Path

from outpaint.config import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def test_settings_table_matches_the_code():
    text = README.read_text()
    assert START in text, "README lacks the settings markers"
    assert END in text, "README lacks the settings markers"
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == settings_table(), (
        "README settings table is stale; regenerate with: "
        "python -c 'from outpaint.config import settings_table; print(settings_table())'"
    )


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make run", "make test"]
