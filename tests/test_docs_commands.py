"""The `memae` command lines of the README, the guides and the serving and client pages parse.

Readers copy these commands, so each one is checked against the parser that
will read it: the lines of every ```` ```bash ```` / ```` ```sh ```` block that
start with `memae` are parsed whole by `memae_tf.cli.build_parser` (and, for
`memae model-server`, their TF Serving flags by `memae_tf.serving.parse_flags`,
as the command does), and every option named in an inline `` `memae COMMAND
--option ...` `` fragment of the prose must be one of that command's options.
Nothing runs: a renamed or removed option fails here instead of in a reader's
shell.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from memae_tf.cli import build_parser
from memae_tf.serving import parse_flags
from memae_tf.serving.flags import FLAGS, TF_SERVING_FLAGS, unknown_arguments

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / name for name in ("README.md", "client/README.md", "serving/README.md",
                                  "serving/k8s/training/README.md")]
PAGES += [page for page in sorted((ROOT / "docs").rglob("*.md"))
          if "_hooks" not in page.parts and not page.is_symlink()
          and page.parent.name != "benchmarks"]
FENCE = re.compile(r"^```[^\n]*\n.*?^```", re.S | re.M)


def fenced_commands(text: str) -> list[list[str]]:
    """The `memae ...` command lines of the shell blocks of a markdown text, as words."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["memae"]:
                commands.append(words[1:])
    return commands


def inline_options(text: str) -> list[tuple[str, str]]:
    """`(command, option)` for each `--option` in an inline `` `memae command ...` `` fragment."""
    prose = FENCE.sub("", text).replace("\n", " ")
    found = []
    for fragment in re.findall(r"`memae ([a-z][\w-]*)([^`]*)`", prose):
        command, rest = fragment
        found.extend((command, option.split("=")[0]) for option in re.findall(r"--[\w-]+", rest))
    return found


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def parse(words: list[str]) -> None:
    """Parses `memae WORDS` as `memae` would, raising AssertionError where it would refuse."""
    try:
        namespace = build_parser().parse_args(words)
    except SystemExit as exit_:  # argparse's refusal (2), or --version / --help (0)
        assert exit_.code == 0, f"memae {shlex.join(words)}: refused by the parser"
        return
    if words[0] == "model-server" and not {"--help", "-h"} & set(namespace.flags):
        parse_flags(namespace.flags)
        # TF Serving starts with an argument it does not know, and ignores it: in a page
        # it is a mistake.
        assert not unknown_arguments(namespace.flags), (
            f"memae {shlex.join(words)}: unknown argument: {unknown_arguments(namespace.flags)}")


def test_fenced_commands_finds_only_memae_lines_of_shell_blocks():
    text = ("```bash\nmemae train --data mnist \\\n    --out runs/x   # comment\nls\n```\n"
            "```python\nmemae = 1\n```\n")
    assert fenced_commands(text) == [["train", "--data", "mnist", "--out", "runs/x"]]


def test_inline_options_reads_the_options_of_memae_fragments_only():
    text = ("Run `memae serve --port 1 --ssl-cert=c` or `kubectl --x`, not\n"
            "```bash\nmemae a --b\n```")
    assert inline_options(text) == [("serve", "--port"), ("serve", "--ssl-cert")]


def test_a_renamed_option_would_fail_the_parse(capsys):
    with pytest.raises(AssertionError, match="refused by the parser"):
        parse(["export", "--model", "d.keras", "--model-base-path", "m", "--serving_root", "/x"])
    with pytest.raises(AssertionError, match=r"unknown argument: \['--grpc_port=1'\]"):
        parse(["model-server", "--grpc_port=1"])


def test_the_pages_have_commands_to_check():
    commands = [words[0] for page in PAGES for words in fenced_commands(page.read_text())]
    assert {"train", "export", "model-server", "monitor"} <= set(commands)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_shell_commands_of_the_page_parse(page, capsys):
    for words in fenced_commands(page.read_text()):
        parse(words)


def unknown_options(text: str) -> list[str]:
    """The `memae COMMAND --option` of the inline fragments of `text` that memae lacks."""
    commands = subparsers()
    unknown = []
    for command, option in inline_options(text):
        if option == "--help":  # every command answers it (model-server by its own usage)
            continue
        if command == "model-server":
            if unknown_arguments([option]) or option.removeprefix("--") in (
                    TF_SERVING_FLAGS - FLAGS.keys()):
                unknown.append(f"memae {command} {option}")
        elif command not in commands or option not in commands[command]._option_string_actions:
            unknown.append(f"memae {command} {option}")
    return unknown


def test_unknown_options_finds_a_renamed_option_and_keeps_the_real_ones():
    text = ("`memae serve --max-batch-size 8 --max-batch 8`, `memae model-server --help "
            "--enable_batching --batching=true`, `memae exports --model m`")
    assert unknown_options(text) == ["memae serve --max-batch", "memae model-server --batching",
                                     "memae exports --model"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_options_named_in_the_prose_exist(page):
    unknown = unknown_options(page.read_text())
    assert not unknown, f"{page.name} names options that memae does not have: {unknown}"
