"""The project's basic files agree with pyproject.toml: license, changelog, citation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_is_the_license_pyproject_declares():
    # PEP 639: an SPDX expression and the files that hold the license text.
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_changelog_has_a_section_for_the_current_version_first():
    versions = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert versions[0] == PROJECT["version"]
    text = (ROOT / "CHANGELOG.md").read_text()
    section = text.split(f"## [{PROJECT['version']}]")[1].split("\n## [")[0]
    assert "### Breaking changes" in section


def test_citation_names_this_version_and_the_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == PROJECT["version"]
    assert citation["license"] == "Apache-2.0"
    paper = citation["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2019
    assert paper["title"].startswith("Memorizing Normality to Detect Anomaly")
    assert paper["authors"][0]["family-names"] == "Gong"


def test_readme_is_a_landing_page_without_development_history():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "pip install ." in text and "pip install ./client" in text
    for pattern in (r"\brounds?\b", r"\bprobes?\b", r"not blind"):
        assert not re.search(pattern, text, re.I), f"README says {pattern!r}"


def test_package_comments_cite_history_sections_not_round_numbers():
    # A "round N" means nothing to a reader of the code; benchmarks/HISTORY.md's
    # section titles can be searched for.
    cited = [f"{path.relative_to(ROOT)}:{number}"
             for path in sorted((ROOT / "memae_tf").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\brounds? \d+|\bround-\d+", line, re.I)]
    assert cited == []
