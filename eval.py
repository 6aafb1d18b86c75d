"""Metrics (pass@k, n@k with bootstrap intervals) and the evaluation CLI.

    python eval.py --model smollm2-135m --data easy:valid --turns 3 --rollouts 4 --temperature 0.2

runs rollouts through the same engine and sandbox as training and reports
multi-turn (answers with execution feedback) and single-turn (independent
samples) figures side by side, as the paper's tables do.

Estimators:
- pass@k (Chen et al. 2021): from n samples of which c are correct, the
  unbiased estimate 1 - C(n-c, k) / C(n, k), computed as a product so it is
  stable for n in the thousands.
- 1@3 (AlphaCode's n@k, each turn one sample; RLEF section 4): one rollout of
  up to 3 turns is 3 samples with 1 submission, its final answer. So 1@3 is the
  fraction of rollouts whose final answer passes the judge tests, averaged per
  problem, then over problems. Single-turn 1@3 comes from rollouts whose turns
  are independent samples (no feedback); the submission is the first sample
  that passes the public tests, else the last.
- Intervals: bootstrap over problems, 200 resamples, 2.5 / 97.5 percentiles.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter

import numpy as np


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


def bootstrap(per_problem: list[float], resamples: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Mean over problems and its 2.5 / 97.5 percentile bootstrap interval
    (problems resampled with replacement)."""
    x = np.asarray(per_problem, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def solve_rate_by_problem(episodes) -> list[float]:
    """1@3 per problem: the fraction of its rollouts whose final answer passed."""
    by_problem: dict[str, list[bool]] = {}
    for ep in episodes:
        by_problem.setdefault(ep.problem.name, []).append(ep.solved)
    return [float(np.mean(v)) for v in by_problem.values()]


def turn_breakdown(episodes) -> dict[int, Counter]:
    """Per turn, how many answers got each public-test verdict (the paper's
    error analysis: wrong answer, timeout, runtime error, passed, no code)."""
    table: dict[int, Counter] = {}
    for ep in episodes:
        for i, t in enumerate(ep.turns, 1):
            table.setdefault(i, Counter())[t.verdict] += 1
    return table


def fmt(mean: float, lo: float, hi: float) -> str:
    return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    import dataclasses

    import torch
    from tqdm import tqdm

    import data
    import rlef
    from sandbox import Sandbox
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=data.SMOLLM2)
    ap.add_argument("--data", default="easy:valid", help=data.DATASETS)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per problem")
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--limit", type=int, default=0, help="only the first N problems (0: all)")
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--batch", type=int, default=64, help="episodes per engine batch")
    ap.add_argument("--out", default="", help="write the figures to this JSON file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    problems = data.load_problems(args.data)[:args.limit or None]
    model = data.resolve_model(args.model)
    tokenizer = data.load_tokenizer(model)
    cfg = rlef.Config(model=args.model, max_turns=args.turns, temperature=args.temperature, top_p=args.top_p,
                      max_new_tokens=args.max_new_tokens, engine=args.engine, seed=args.seed)
    engine = rlef.make_engine(model, cfg)
    results = {"model": args.model, "data": args.data, "problems": len(problems), "rollouts": args.rollouts,
               "temperature": args.temperature, "top_p": args.top_p, "turns": args.turns}
    rows = []
    with Sandbox(workers=cfg.sandbox_workers) as sb:
        for mode, feedback in (("multi-turn", "execution"), ("single-turn", "none")):
            run = dataclasses.replace(cfg, feedback=feedback)
            todo, rng, eps = problems * args.rollouts, random.Random(args.seed), []
            torch.manual_seed(args.seed)  # the engines sample with torch's RNG
            for start in tqdm(range(0, len(todo), args.batch), desc=mode, unit="batch"):
                eps += rlef.rollout(engine, sb, tokenizer, todo[start:start + args.batch], run, rng)
            est = bootstrap(solve_rate_by_problem(eps))
            breakdown = {turn: dict(c) for turn, c in turn_breakdown(eps).items()}
            results[mode] = {f"1@{args.turns}": est, "episodes": len(eps), "turns": breakdown,
                             "overflow": sum(ep.overflow for ep in eps)}
            rows.append((mode, est, len(eps), breakdown))
    engine.close()
    print(f"\n{args.model} on {args.data}: {len(problems)} problems x {args.rollouts} rollouts, "
          f"T={args.temperature}, top-p={args.top_p}\n")
    print(f"| mode | 1@{args.turns} (%, 95% CI) | episodes | verdicts per turn |")
    print("|---|---|---|---|")
    for mode, est, n, breakdown in rows:
        turns = "; ".join(f"t{t}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                          for t, c in breakdown.items())
        print(f"| {mode} | {fmt(*est)} | {n} | {turns} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
