"""The README's results table says what benchmarks/RESULTS.md says.

README.md shows one table of the current defaults, rounded to three decimals;
RESULTS.md holds the same figures to four decimals in its "Summary" table and,
with seeds and spreads, in one section per dataset. The tests parse the three
and compare them, so a figure changed in one place fails until the others follow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def section(text: str, heading: str) -> str:
    """The text of the `## heading...` section (up to the next `## `)."""
    match = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no section '## {heading}'"
    return match.group(1)


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of `text`: rows of stripped cells, the separator row dropped."""
    found, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def number(cell: str) -> float | None:
    """The leading number of a cell (`**0.9818 ± 0.0012**` → 0.9818), None for `–`."""
    match = re.search(r"\d+\.\d+", cell)
    return float(match.group()) if match else None


def dataset_name(cell: str) -> str:
    return cell.split("(")[0].strip().lower()


def summary() -> dict[str, dict[str, float | None]]:
    header, *rows = tables(section(RESULTS.read_text(), "Summary"))[0]
    return {dataset_name(row[0]): {col: number(cell) for col, cell in zip(header, row, strict=True)}
            for row in rows}


def test_readme_results_table_rounds_the_summary_of_results_md():
    readme_table = tables(section(README.read_text(), "Results"))[0]
    header, *rows = readme_table
    columns = {"MemAE": "MemAE", "AE": "AE", "OC-SVM": "OC-SVM", "IForest": "IForest",
               "paper": "paper MemAE"}
    reference = summary()
    assert {dataset_name(row[0]) for row in rows} == set(reference)
    for row in rows:
        figures = reference[dataset_name(row[0])]
        for readme_column, results_column in columns.items():
            shown = row[header.index(readme_column)]
            expected = figures[results_column]
            assert shown == ("–" if expected is None else f"{expected:.3f}"), (
                f"{row[0]}, {readme_column}: README shows {shown}, RESULTS.md {expected}")


# The section of RESULTS.md that holds each summary row's seeds or splits.
SECTIONS = {
    "mnist": "MNIST (test set)",
    "fashion-mnist": "Fashion-MNIST",
    "animal-mnist": "Animal-MNIST",
    "moving-mnist video": "Moving-MNIST video",
    "walkway video": "Walkway video",
    "shuttle": "Shuttle",
    "satellite": "Satellite",
}


def section_figures(name: str) -> dict[str, float | None]:
    """MemAE, nonSpar and AE of a dataset's section: its mean row, or its model rows."""
    text = section(RESULTS.read_text(), SECTIONS[name])
    header, *rows = tables(text)[0]
    if header[0] == "seed":
        mean = next(row for row in rows if row[0].strip("*").startswith("mean"))
        return {"MemAE": number(mean[1]), "MemAE-nonSpar": number(mean[2]),
                "AE": number(mean[3])}
    by_model = {row[0]: number(row[1]) for row in rows}
    return {"MemAE": by_model.get("MemAE"), "MemAE-nonSpar": by_model.get("MemAE-nonSpar"),
            "AE": by_model.get("AE"), "OC-SVM": by_model.get("OC-SVM"),
            "IForest": by_model.get("IsolationForest")}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_results_md_summary_agrees_with_each_dataset_section(name):
    row = summary()[name]
    for column, value in section_figures(name).items():
        if value is not None:
            assert row[column] == value, f"{name}, {column}: summary {row[column]}, section {value}"


def test_every_summary_row_has_a_section():
    assert set(summary()) == set(SECTIONS)
