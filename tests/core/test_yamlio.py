"""The one YAML reader: YAML 1.2 numbers, JSON types only, and no alias bomb or recursion anywhere it is used."""

from __future__ import annotations

import re
import time

import click
import pytest
import yaml

from tuning_service.cli.options import parse_key_values
from tuning_service.core import yamlio
from tuning_service.core.errors import InputError
from tuning_service.core.spec import read_points_file
from tuning_service.data.catalog import load_job

RECURSIVE = "a: &x [*x]\n"
# Nine levels of nine aliases: 33 lines that expand to 9^9 (387 million) values.
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9 if i else ['lol'] * 9)}]\n" for i in range(10))
DEEP = "a: " + "[" * 1000 + "]" * 1000 + "\n"  # PyYAML recurses about 3 frames per level


def test_numbers_follow_yaml_1_2():
    """Before: `08` raised "invalid literal for int() with base 0" (PyYAML reads it as a bad octal)."""
    data = yamlio.loads("a: 08\nb: 010\nc: 0o17\nd: 0x1F\ne: -07\nf: 1e-3\ng: no\nh: 12:30\ni: .inf\n")
    assert data == {
        "a": 8,
        "b": 10,
        "c": 15,
        "d": 31,
        "e": -7,
        "f": 0.001,
        "g": "no",
        "h": "12:30",
        "i": float("inf"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RECURSIVE, r"a recursive alias \(an anchor used inside itself\) at line 1"),
        (LAUGHS, r"aliases expand this document from \d+ to \d+ values"),
        (DEEP, "nested too deeply to read"),
        ("a: !!timestamp 2001-12-14\n", "could not determine a constructor for the tag .*timestamp"),
        ("a: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
        ("a: !!set {x}\n", "could not determine a constructor"),
        ("a: !!float ten\n", "cannot read 'ten' as float"),
        ("a: !!bool maybe\n", "cannot read 'maybe' as bool"),
        ("a: " + "9" * 5000 + "\n", r"cannot read '9{40}\.\.\.' as int"),
        ("{[1]: 2}\n", "found unhashable key"),
        # Found by the fuzzer: JSON's escape of half a surrogate pair reached os.fsencode (UnicodeEncodeError).
        ('a: "\\ud800"\n', r"cannot read '\\ud800' as str"),
    ],
)
def test_documents_the_service_refuses_fail_at_once_with_one_line(text, message):
    started = time.monotonic()
    with pytest.raises(yaml.YAMLError) as raised:
        yamlio.loads(text)
    assert time.monotonic() - started < 20  # at once, not the minutes (or the memory) of expanding it
    line = yamlio.describe(raised.value)
    assert "\n" not in line
    assert re.search(message, line), line


def test_a_whole_surrogate_pair_is_one_character_as_in_json():
    assert yamlio.loads('a: "\\ud83d\\ude00"\n') == {"a": "\U0001f600"}


def test_aliases_that_only_repeat_a_little_are_read():
    text = "base: &b {units: 8, layers: 2}\nsweeps: [*b, *b, *b]\n"
    assert yamlio.loads(text)["sweeps"] == [{"units": 8, "layers": 2}] * 3


# The same three, as one-line values (an option's VALUE is one line).
ONE_LINE = {
    "recursive": "&x [*x]",
    "laughs": "["
    + ", ".join(f"&l{i} [{', '.join([f'*l{i - 1}'] * 9 if i else ['lol'] * 9)}]" for i in range(10))
    + "]",
    "deep": "[" * 1000 + "]" * 1000,
}


@pytest.mark.parametrize("kind", sorted(ONE_LINE))
def test_every_yaml_input_refuses_a_recursive_or_exploding_document_in_one_line(tmp_path, kind):
    """Job files, warm-start files and KEY=VALUE options all read through the same loader.
    Before: a RecursionError or an exponential walk, with a traceback."""
    value = ONE_LINE[kind]
    (tmp_path / "rows.csv").write_text("x,y\n1,0\n2,1\n")
    job_file = tmp_path / "job.yaml"
    job_file.write_text(f"csv: rows.csv\ntarget: y\nspace: {value}\n")
    points = tmp_path / "points.yaml"
    points.write_text(f"- units: {value}\n")
    started = time.monotonic()
    with pytest.raises(InputError, match=r"job.yaml: not valid YAML: ") as raised:
        load_job(str(job_file))
    assert "\n" not in str(raised.value)
    with pytest.raises(InputError, match=r"--warm-start .* is not valid JSON or YAML: ") as raised:
        read_points_file(points)
    assert "\n" not in str(raised.value)
    with pytest.raises(click.UsageError, match=r"--searcher-option 'k=.*': the value is not valid YAML"):
        parse_key_values("--searcher-option", (f"k={value}",))
    assert time.monotonic() - started < 20  # at once, not the minutes (or the memory) of expanding it
