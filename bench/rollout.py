"""Rollout throughput: vLLM vs the transformers engine on the same episodes,
and the transformers engine against what it was before: `generate`.

    .venv/bin/python bench/rollout.py [--problems 8] [--samples 2] [--repeats 3]

Every engine plays the same multi-turn episodes (SmolLM2-135M-Instruct, easy
set valid split, 3 turns, the CPU demo's sampling: T = 0.5, answers of at most
192 tokens that end at the line closing their code block), in bf16 where the
CPU has it natively and fp32 elsewhere (rlef.engine_dtype), through the
same sandbox. The transformers engine runs two ways, alternating repeat by
repeat, with torch's RNG seeded before each engine call, so that both sample
the very same tokens (the last line checks it):

- "hf": rlef.HFEngine, a decode loop over the model that keeps each sampled
  token's log-prob only and decodes text only where a token may complete the
  stop text (rlef.RowEnds);
- "hf generate (before)": the engine as it was, `GenerateBefore` below:
  transformers `generate` with the full logits of every step kept and a
  stopping criterion that decodes every row's last tokens at every token.

On a CPU both are bound by the model's arithmetic; the loop is written for a
GPU, where a step of a 135M model is kernel launches (rlef.HFEngine).

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


class RowEndsBefore:
    """The stopping criterion `generate` was given: at every token, every row's
    last few tokens decoded and searched for the stop text."""

    def __init__(self, tokenizer, width: int, limits: list[int], eot: int, stop: str):
        self.tokenizer, self.width, self.eot, self.stop = tokenizer, width, eot, stop
        self.lengths, self.done = list(limits), [False] * len(limits)
        self.window = 2 * len(stop.encode()) + 4

    def __call__(self, input_ids, scores, **kwargs):
        n = input_ids.shape[1] - self.width  # new tokens so far
        for i, tail in enumerate(input_ids[:, -min(n, self.window):].tolist()):
            if self.done[i]:
                continue
            text = self.tokenizer.decode(tail, skip_special_tokens=True) if self.stop else ""
            if tail[-1] == self.eot or n >= self.lengths[i] or (self.stop and self.stop in text):
                self.done[i], self.lengths[i] = True, n
        return torch.tensor(self.done, device=input_ids.device)


class GenerateBefore:
    """The transformers engine as it was (commit 5b74864): `generate` on the
    engine's model, log-probs read from the full logits of every step."""

    def __init__(self, hf):
        self.model, self.tokenizer, self.device = hf.model, hf.tokenizer, hf.device

    def generate(self, prompts, max_tokens, temperature, top_p, stop=""):
        from transformers import StoppingCriteriaList
        eot, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        width = max(map(len, prompts))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        ends = RowEndsBefore(self.tokenizer, width, max_tokens, eot, stop)
        sample = temperature > 0
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=mask, max_new_tokens=max(max_tokens),
                                      do_sample=sample, temperature=temperature if sample else None,
                                      top_p=top_p if sample else None, top_k=0 if sample else None,
                                      eos_token_id=eot, pad_token_id=pad, stopping_criteria=StoppingCriteriaList([ends]),
                                      output_logits=True, return_dict_in_generate=True)
        new = out.sequences[:, width:]
        t = temperature if sample else 1.0
        logprobs = torch.stack([(step.float() / t).log_softmax(-1).gather(-1, new[:, j, None])[:, 0]
                                for j, step in enumerate(out.logits)], 1)
        completions = []
        for row, lp, n in zip(new.tolist(), logprobs.tolist(), ends.lengths):
            at_stop = rlef.stop_length(self.tokenizer, row[:n], stop)
            n = at_stop or n
            completions.append(rlef.Completion(row[:n], lp[:n], finished=row[n - 1] == eot,
                                               stopped=at_stop is not None))
        return completions


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
    runs: dict[str, list] = {"vllm": [], "hf": [], "hf generate (before)": []}
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
            for name, engine in (("hf", hf), ("hf generate (before)", GenerateBefore(hf))):
                runs[name].append(play(engine, sb, tok, problems, cfg))
        hf.close()
    ids = {name: [[ep.ids for ep in eps] for eps, _, _ in r] for name, r in runs.items()}
    same = ids["hf"] == ids["hf generate (before)"]

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
    print(f"hf, the decode loop / generate as before: {h / before:.2f}x "
          f"(the same episodes, token for token: {'yes' if same else 'NO'})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "episodes": len(problems), "vllm_tok_s": v, "hf_tok_s": h, "hf_before_tok_s": before,
            "vllm_episodes_s": figures["vllm"]["episodes_s"], "hf_episodes_s": figures["hf"]["episodes_s"],
            "sync_s": sync, "hf_same_episodes": same}))


if __name__ == "__main__":
    main()
