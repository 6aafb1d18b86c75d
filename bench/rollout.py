"""Rollout throughput: vLLM vs the transformers engine on the same episodes,
and the transformers engine before and after rows end while generating.

    .venv/bin/python bench/rollout.py [--problems 8] [--samples 2] [--repeats 3]

Every engine plays the same multi-turn episodes (SmolLM2-135M-Instruct, easy
set valid split, 3 turns, the CPU demo's sampling: T = 0.5, answers of at most
192 tokens that end at the line closing their code block), in bf16 where the
CPU has it natively and fp32 elsewhere (rlef.engine_dtype), through the
same sandbox. The transformers engine runs two ways, alternating repeat by
repeat, with torch's RNG seeded before each engine call, so that both sample
the very same tokens (the last line checks it):

- "hf": rows end at the end-of-turn token, their own limit or the stop text
  while generating (rlef.RowEnds), so a batch ends when its last row has;
- "hf, rows to the end": what the engine did before, every batch runs until
  all rows sampled the end-of-turn token or reached the longest limit, and
  the stop text is applied afterwards (`rows_end_early = False`).

Printed: kept tokens per second of generation (medians over repeats),
episodes/s, the share of the rollout spent generating and in the sandbox, and
(vLLM) one weight sync of the whole model, as the training loop does after
each update.
"""
import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import data  # noqa: E402
import rlef  # noqa: E402
from sandbox import Sandbox  # noqa: E402


class Reseeded:
    """The engine, with torch's global RNG (which both engines sample with) seeded
    afresh before each call: a batch that ends early draws fewer numbers, and
    without this every later turn of the other way would sample other tokens."""

    def __init__(self, engine):
        self.engine, self.calls = engine, 0

    def generate(self, *args, **kwargs):
        self.calls += 1
        torch.manual_seed(self.calls)
        return self.engine.generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def play(engine, sb, tok, problems, cfg) -> tuple[list, Counter, float]:
    times = Counter()
    start = time.perf_counter()
    eps = rlef.rollout(Reseeded(engine), sb, tok, problems, cfg, random.Random(0), times)
    return eps, times, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="rollouts per engine (medians are shown)")
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--json", default="", help="also write the figures to this file (bench/all.py)")
    args = ap.parse_args()
    model = data.resolve_model(data.SMOLLM2)
    tok = data.load_tokenizer(model)
    problems = data.load_easy("valid")[:args.problems] * args.samples
    cfg = rlef.Config(max_turns=3, max_new_tokens=args.max_new_tokens,
                      max_context=2048, temperature=0.5, stop="\n```\n")
    runs: dict[str, list] = {"vllm": [], "hf": [], "hf, rows to the end": []}
    sync = float("nan")
    with Sandbox(workers=2) as sb:
        engine = rlef.make_engine(model, cfg)
        for _ in range(args.repeats):
            runs["vllm"].append(play(engine, sb, tok, problems, cfg))
        from transformers import AutoModelForCausalLM
        weights = AutoModelForCausalLM.from_pretrained(model).state_dict()
        start = time.perf_counter()
        engine.load_weights(weights.items())
        sync = time.perf_counter() - start
        engine.close()
        hf = rlef.make_engine(model, dataclasses.replace(cfg, engine="hf"))
        for _ in range(args.repeats):  # the two ways alternate
            for name, early in (("hf", True), ("hf, rows to the end", False)):
                hf.rows_end_early = early
                runs[name].append(play(hf, sb, tok, problems, cfg))
        hf.close()
    ids = {name: [[ep.ids for ep in eps] for eps, _, _ in r] for name, r in runs.items()}
    same = ids["hf"] == ids["hf, rows to the end"]

    print(f"\n{len(problems)} episodes ({args.problems} problems x {args.samples}), up to 3 turns, "
          f"max {args.max_new_tokens} new tokens, stop at the closing fence, T = 0.5, SmolLM2-135M "
          f"{rlef.engine_dtype(cfg)}, "
          f"{args.repeats} repeats (medians)\n")
    print("| engine | episodes | turns | kept tokens | rollout s | gen tok/s | episodes/s | generate | sandbox |")
    print("|---|---|---|---|---|---|---|---|---|")
    figures = {}
    for name, r in runs.items():
        eps = r[0][0]
        tokens = statistics.median(sum(sum(ep.policy_mask) for ep in e) for e, _, _ in r)
        total = statistics.median(t for _, _, t in r)
        tps = statistics.median(sum(sum(ep.policy_mask) for ep in e) / tm["generate"] for e, tm, _ in r)
        gen = statistics.median(tm["generate"] / t for _, tm, t in r)
        box = statistics.median(tm["sandbox"] / t for _, tm, t in r)
        figures[name] = dict(tok_s=tps, episodes_s=len(eps) / total)
        print(f"| {name} | {len(eps)} | {sum(len(ep.turns) for ep in eps)} | {tokens:.0f} | {total:.1f} | "
              f"{tps:.0f} | {len(eps) / total:.2f} | {gen:.0%} | {box:.1%} |")
    v, h, before = (figures[k]["tok_s"] for k in runs)
    print(f"\nweight sync into vLLM, whole model: {sync:.2f} s")
    print(f"vLLM / hf generated tokens/s: {v / h:.1f}x")
    print(f"hf, rows ending while generating / rows to the end: {h / before:.2f}x "
          f"(the same episodes, token for token: {'yes' if same else 'NO'})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "episodes": len(problems), "vllm_tok_s": v, "hf_tok_s": h, "hf_before_tok_s": before,
            "vllm_episodes_s": figures["vllm"]["episodes_s"], "hf_episodes_s": figures["hf"]["episodes_s"],
            "sync_s": sync, "hf_same_episodes": same}))


if __name__ == "__main__":
    main()
