"""Rollout throughput: vLLM vs the transformers engine on the same episodes.

    .venv/bin/python bench/rollout.py [--problems 8] [--samples 2]

Both engines play the same multi-turn episodes (SmolLM2-135M-Instruct, easy
set valid split, 3 turns, temperature 1, bf16) through the same sandbox, one
after the other in this run. Printed: generated tokens/s, episodes/s, and the
share of the rollout spent generating, in the sandbox, and (vLLM) on one
weight sync of the whole model, as the training loop does after each update.
"""
import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import rlef  # noqa: E402
from sandbox import Sandbox  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--json", default="", help="also write the figures to this file (bench/all.py)")
    args = ap.parse_args()
    model = data.resolve_model(data.SMOLLM2)
    tok = data.load_tokenizer(model)
    problems = data.load_easy("valid")[:args.problems] * args.samples
    rows = []
    with Sandbox(workers=2) as sb:
        for engine_name in ("vllm", "hf"):
            cfg = rlef.Config(engine=engine_name, engine_dtype="bfloat16", max_turns=3,
                              max_new_tokens=args.max_new_tokens, max_context=2048)
            engine = rlef.make_engine(model, cfg)
            times = Counter()
            start = time.perf_counter()
            eps = rlef.rollout(engine, sb, tok, problems, cfg, random.Random(0), times)
            total = time.perf_counter() - start
            sync = float("nan")
            if engine_name == "vllm":
                from transformers import AutoModelForCausalLM
                weights = AutoModelForCausalLM.from_pretrained(model).state_dict()
                start = time.perf_counter()
                engine.load_weights(weights.items())
                sync = time.perf_counter() - start
            engine.close()
            tokens = sum(sum(ep.policy_mask) for ep in eps)
            turns = sum(len(ep.turns) for ep in eps)
            rows.append((engine_name, len(eps), turns, tokens, total, tokens / times["generate"],
                         len(eps) / total, times["generate"] / total, times["sandbox"] / total, sync))
    print(f"\n{len(problems)} episodes ({args.problems} problems x {args.samples}), up to 3 turns, "
          f"max {args.max_new_tokens} new tokens, SmolLM2-135M bf16\n")
    print("| engine | episodes | turns | tokens | rollout s | gen tok/s | episodes/s | generate | sandbox | weight sync s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n, turns, tokens, total, tps, eps_s, g, s, sync in rows:
        print(f"| {name} | {n} | {turns} | {tokens} | {total:.1f} | {tps:.0f} | {eps_s:.2f} | "
              f"{g:.0%} | {s:.1%} | {sync:.2f} |")
    v, h = rows
    print(f"\nvLLM / hf generated tokens/s: {v[5] / h[5]:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "episodes": len(problems), "vllm_tok_s": v[5], "hf_tok_s": h[5], "vllm_episodes_s": v[6],
            "hf_episodes_s": h[6], "sync_s": v[9]}))


if __name__ == "__main__":
    main()
