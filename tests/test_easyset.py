"""The built-in easy set: size, schema, family splits, determinism, and every
reference solution judged by the real sandbox (together with wrong programs
that must fail), in one batch."""
import collections
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import data
import easyset
import sandbox

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "family", "split", "description", "public_tests", "private_tests", "time_limit",
        "memory_limit_mb", "source", "difficulty", "entry_point", "solution"}
SPLITS = ("train", "seen", "valid", "test")


@pytest.fixture(scope="module")
def problems():
    return easyset.problems()


def style(p):
    return "stdin" if p["entry_point"] is None else "function"


def test_size_and_schema(problems):
    assert len(problems) >= 200
    assert len({p["family"] for p in problems}) >= 40
    assert len({p["name"] for p in problems}) == len(problems)
    for p in problems:
        assert set(p) == KEYS, p["name"]
        assert p["name"].startswith(p["family"] + "-")
        assert (p["time_limit"], p["memory_limit_mb"], p["source"]) == (2.0, 256, "easy")
        assert p["difficulty"] in (1, 2, 3) and p["split"] in SPLITS
        assert 1 <= len(p["public_tests"]) <= 3 and len(p["private_tests"]) >= 5, p["name"]
        tests = p["public_tests"] + p["private_tests"]
        assert all(isinstance(t, sandbox.Test) for t in tests)
        given = [t.input if t.check is None else t.check.split("\n")[0] for t in tests]
        assert len(set(given)) == len(given), f"{p['name']}: two tests with the same input"
        if style(p) == "stdin":
            assert all(t.check is None and t.input.endswith("\n") and t.output for t in tests)
            first = p["public_tests"][0]
            assert f"Input\n{first.input}Output\n{first.output}" in p["description"]
        else:
            assert all(t.check is not None for t in tests)
            assert f"def {p['entry_point']}(" in p["solution"]
            assert p["description"].startswith(f"Write a Python function `{p['entry_point']}(")


def test_both_styles_and_a_balance():
    counts = collections.Counter((f.style, f.difficulty) for f in easyset.FAMILIES)
    assert counts[("stdin", 1)] + counts[("stdin", 2)] + counts[("stdin", 3)] == \
        counts[("function", 1)] + counts[("function", 2)] + counts[("function", 3)]
    assert all(counts[(s, d)] >= 5 for s in ("stdin", "function") for d in (1, 2, 3))


def test_instances_of_a_family_differ_in_the_task(problems):
    by_family = collections.defaultdict(list)
    for p in problems:
        by_family[p["family"]].append(p)
    for family, ps in by_family.items():
        # the statement, not only the tests, changes from one instance to the next
        assert len({p["description"].split("\n\nExample")[0] for p in ps}) == len(ps) >= 6, family


def test_splits_are_by_family_and_mixed(problems):
    split_of = {}
    for p in problems:
        family_split = "train" if p["split"] == "seen" else p["split"]  # seen: a training family's other instances
        assert split_of.setdefault(p["family"], family_split) == family_split, f"{p['family']} is in two splits"
    families = collections.Counter(split_of.values())
    assert families["train"] > families["valid"] > 0 and families["train"] > families["test"] > 0
    assert 0.5 <= families["train"] / len(split_of) <= 0.7
    for split in SPLITS:
        ps = [p for p in problems if p["split"] == split]
        assert {style(p) for p in ps} == {"stdin", "function"}, split
        assert {p["difficulty"] for p in ps} == {1, 2, 3}, split


def test_seen_holds_new_instances_of_the_training_families_and_sizes_for_a_paired_change(problems):
    """easy:seen: every training family's instances after its first N_TRAIN (easy:train, 170
    problems as in version 1), in no training split. Each held-out split is large enough
    for a 10-point paired change to lie ~6 points clear of 0 (docs/environment.md says why)."""
    split = {s: [p for p in problems if p["split"] == s] for s in SPLITS}
    train_families = {p["family"] for p in split["train"]}
    assert {p["family"] for p in split["seen"]} == train_families
    assert len(split["train"]) == len(train_families) * easyset.N_TRAIN == 170
    for p in split["train"] + split["seen"]:
        assert (int(p["name"].rsplit("-", 1)[1]) >= easyset.N_TRAIN) == (p["split"] == "seen"), p["name"]
    seen_tasks = {p["description"].split("\n\nExample")[0] for p in split["seen"]}
    assert not seen_tasks & {p["description"].split("\n\nExample")[0] for p in split["train"]}
    assert all(len(split[s]) >= 130 for s in ("seen", "valid", "test")), {s: len(v) for s, v in split.items()}


def test_version_1_problems_are_unchanged(problems):
    """Version 2 only added instances: the first 5 of every family are version 1's 280
    problems, to the letter (names, splits, statements, solutions, tests), and come
    first, in version 1's order (a split's first N problems are what they were)."""
    assert easyset.VERSION == 2
    first = problems[:280]
    assert all(int(p["name"].rsplit("-", 1)[1]) < 5 for p in first)
    rows = [[p["name"], p["split"], p["description"], p["solution"],
             [[t.input, t.output, t.check] for t in p["public_tests"] + p["private_tests"]]] for p in first]
    assert len(first) == 280
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == \
        "9a73a99f810cea3009d7807d4a490f22c3af1e601187c61dfd7646119d97349d"


def test_public_and_private_tests_reject_a_constant_answer(problems):
    for p in problems:
        for tests in (p["public_tests"], p["private_tests"]):
            answers = {t.output if t.check is None else t.check.split("\n")[1] for t in tests}
            assert len(answers) >= 2, p["name"]


def digest(ps) -> str:
    return hashlib.sha256(repr(ps).encode()).hexdigest()


def test_deterministic(problems):
    assert easyset.problems() == problems  # the cached list, in fresh dicts
    easyset._problems.cache_clear()
    assert digest(easyset.problems()) == digest(problems)  # rebuilt: equal text (Test has no __eq__)
    # Another process with another string-hash seed builds the same set.
    code = "import easyset, hashlib; print(hashlib.sha256(repr(easyset.problems()).encode()).hexdigest())"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == digest(problems)


def by_name(problems, name):
    return next(p for p in problems if p["name"] == name)


# Wrong programs and the verdict they must get on every test.
def wrong_programs(problems):
    linear = by_name(problems, "linear-0")            # n -> 2 * n + 3
    add = by_name(problems, "arith2-0")               # add(a, b)
    return [
        ("prompt", linear, "n = int(input('Enter a number: '))\nprint(2 * n + 3)\n", "WA"),
        ("extra text", linear, "n = int(input())\nprint('The answer is', 2 * n + 3)\n", "WA"),
        ("wrong formula", linear, "n = int(input())\nprint(2 * n)\n", "WA"),
        ("wrong value", add, "def add(a, b):\n    return a + b + 1\n", "WA"),
        ("prints, does not return", add, "def add(a, b):\n    print(a + b)\n", "WA"),
        ("wrong name", add, "def add_numbers(a, b):\n    return a + b\n", "RE"),
        ("reads stdin", add, "a, b = map(int, input().split())\ndef add(a, b):\n    return a + b\n", "RE"),
    ]


def hard_coded_example(p) -> str:
    """What SmolLM2 often writes: the statement's example answer, whatever the input."""
    if p["entry_point"] is None:
        return f"print({p['public_tests'][0].output.strip()!r})\n"
    want = p["description"].rsplit("returns `", 1)[1][:-1]
    return f"def {p['entry_point']}(*args):\n    return {want}\n"


@pytest.fixture(scope="module")
def verdicts(problems):
    """One sandbox batch: every reference solution on all its tests, then the wrong
    programs, then each problem's example hard-coded, on its public tests."""
    wrong = wrong_programs(problems)
    jobs = [(p["solution"], p["public_tests"] + p["private_tests"]) for p in problems]
    jobs += [(code, p["public_tests"] + p["private_tests"]) for _, p, code, _ in wrong]
    jobs += [(hard_coded_example(p), p["public_tests"]) for p in problems]
    with sandbox.Sandbox(workers=2) as sb:
        results = sb.map(jobs, time_limit=easyset.TIME_LIMIT, memory_limit_mb=easyset.MEMORY_MB)
    return [[r.verdict for r in rs] for rs in results]


def test_every_reference_solution_passes_its_own_tests(problems, verdicts):
    failing = {p["name"]: v for p, v in zip(problems, verdicts) if v != ["AC"] * len(v)}
    assert failing == {}


def test_wrong_programs_fail(problems, verdicts):
    wrong = wrong_programs(problems)
    for (what, p, _, expected), v in zip(wrong, verdicts[len(problems):]):
        assert set(v) == {expected}, what
    # A hard-coded example passes the first public test and fails a later one, so
    # it gets feedback (the episode does not end on it).
    hard_coded = verdicts[len(problems) + len(wrong):]
    assert len(hard_coded) == len(problems)
    for p, v in zip(problems, hard_coded):
        assert v[0] == "AC" and "WA" in v[1:], (p["name"], v)


def test_load_easy_through_data():
    splits = {s: data.load_easy(s) for s in SPLITS}
    assert sum(map(len, splits.values())) == len(data.load_easy("all")) == len(easyset.problems())
    for split, ps in splits.items():
        assert ps and all(isinstance(p, data.Problem) and p.source == "easy" for p in ps), split
        assert {p.entry_point is None for p in ps} == {True, False}, split
    p = splits["train"][0]
    assert p.judge_tests == p.private_tests and p.solution and p.time_limit == 2.0
    assert data.first_turn_messages(p)[0]["content"].startswith(
        "Provide a Python solution for the following competitive programming question: ")


def test_load_easy_keeps_one_style_on_request():
    train = data.load_problems("easy:train")
    function, stdin = data.load_problems("easy:train:function"), data.load_problems("easy:train:stdin")
    assert function and all(p.entry_point for p in function)
    assert stdin and all(p.entry_point is None for p in stdin)
    assert sorted(p.name for p in function + stdin) == sorted(p.name for p in train)
    with pytest.raises(data.DataError, match="styles are function and stdin"):
        data.load_problems("easy:train:functions")
