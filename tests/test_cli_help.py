"""`memae --version` and the help of every subcommand's options.

The help walk is independent of how the defaults are shown: for each option of
each subcommand that is not required, the expanded help text of the option (as
`memae COMMAND --help` prints it) must name its default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import memae_tf
from memae_tf.cli import ArgumentParser, build_parser

ROOT = Path(__file__).resolve().parents[1]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found = {"memae": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({f"memae {name}": sub for name, sub in action.choices.items()})
    return found


def test_the_walk_reaches_every_command():
    assert {"memae train", "memae score", "memae evaluate", "memae export", "memae serve",
            "memae experiment", "memae demo", "memae report"} <= set(subcommands())


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_optional_option_shows_its_default(command):
    parser = subcommands()[command]
    missing = []
    for action in parser._actions:
        if (not action.option_strings or action.required or action.help is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            continue
        # The option's entry as `--help` prints it: argparse prints no help text
        # (so no default) for an option without `help=`.
        formatter = parser._get_formatter()
        formatter.add_argument(action)
        if "default" not in formatter.format_help():
            missing.append("/".join(action.option_strings))
    assert not missing, f"{command}: no default in the help of {missing}"


def test_an_option_without_help_text_fails_the_walk():
    # The guard of the walk above: argparse prints nothing after an option that
    # has no help text, so its default is not shown.
    parser = ArgumentParser()  # memae's, with its defaults formatter
    action = parser.add_argument("--split", default="test")
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    assert "default" not in formatter.format_help()
    action.help = "which split"
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    assert "which split (default: test)" in formatter.format_help()


def test_help_shows_the_value_of_a_default():
    train = subcommands()["memae train"]
    text = train.format_help()
    assert "learning rate (default: 0.001)" in " ".join(text.split())
    assert "(default: mnist)" in text
    # A list default reads as the comma-separated value one would type.
    demo = " ".join(subcommands()["memae demo"].format_help().split())
    assert "e.g. 8 or 3,5 (default: 8)" in demo
    parser = ArgumentParser()
    parser.add_argument("--seeds", default=[0, 1, 2], help="seeds")
    parser.add_argument("--widths", default=(), help="widths")
    text = " ".join(parser.format_help().split())
    assert "seeds (default: 0,1,2)" in text and "widths (default: not set)" in text


def test_version_is_the_installed_distributions_and_pyprojects():
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert metadata.version("memae-tf") == expected, "reinstall: pip install -e ."
    assert memae_tf.__version__ == expected
    result = subprocess.run([sys.executable, "-m", "memae_tf.cli", "--version"],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == f"memae {expected}"
