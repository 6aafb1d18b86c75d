"""Training tokens/s of one PPO update (policy + value), ours vs TRL's PPO trainer.

Same model (SmolLM2-135M-Instruct), same batch (B episodes of P prompt + R
answer tokens), same schedule (K optimizer steps of B/K episodes, gradient
accumulation over microbatches of M episodes), same precision (fp32 master
weights, bf16 autocast), same activation checkpointing (of policy and value;
TRL's `gradient_checkpointing` flag is a no-op in its PPO loop, so the worker
enables it on both models itself), in one run: the two alternate update by
update, and the table shows medians of wall-clock and CPU time (CPU time is
the fairer measure when other processes share the cores).

Each contender is a process of its own (`--worker`), and they take turns,
update by update: ours as it is; ours "before", with glibc's malloc set as
rlef's loop set it until 2026-12 (every block of 1 MB or more mapped on malloc
and unmapped on free; ppo.keep_freed_memory says why that put a third of the
update's CPU time in the kernel), or with `--before DIR` the ppo.py of another
checkout (`git worktree add DIR REV`), to measure a change; TRL, with glibc's
defaults. The table shows
each one's CPU time in the kernel and its minor page faults. A new contender
is a name in CONTENDERS and a branch in `worker`.

An "update" is everything between finished episodes and updated weights:
pi_old, reference and value forwards over the batch, rewards and advantages,
then the K optimizer steps of policy and value. Tokens/s = B * (P + R) / time.

TRL's side (trl==1.12.0, `trl.experimental.ppo.PPOTrainer`) runs in its own
virtual environment, so the project's is untouched:

    python3 -m venv /tmp/trl-venv
    /tmp/trl-venv/bin/pip install torch==2.13.0+cpu transformers==5.19.0 trl==1.12.0

and, in there, as a child process of this script (`--worker trl`). Its
trainer samples answers itself; here `batch_generation` is replaced by the
same fixed answers plus one policy forward for their logits (what our update
pays for pi_old), and the reward model is a 1-layer stand-in (our reward
comes from execution, free at update time). Its `train()` runs inside
`torch.autocast("cpu", bfloat16)` and with ACCELERATE_MIXED_PRECISION=bf16,
so its reference/value/reward forwards, which accelerate does not wrap, also
compute in bf16 as ours do.

    .venv/bin/python bench/ppo.py                       # B=16, P=R=128, K=2, M=4
    .venv/bin/python bench/ppo.py --repeats 5 --no-checkpointing
    git worktree add /tmp/rlef-old HEAD~1 && .venv/bin/python bench/ppo.py --before /tmp/rlef-old

With `--lora R` the contenders are ours with full fine-tuning and ours with
LoRA of rank R (ppo.LoRAModel: one frozen base, two adapters), on the same
work, and the table adds each process's peak memory (its largest resident
set, loading included; on a GPU, the most torch allocated there) and how
many parameters it trains:

    .venv/bin/python bench/ppo.py --lora 16
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def episode_tokens(args):
    """Deterministic prompt and answer ids (no special tokens, no pad id)."""
    import random
    g = random.Random(0)
    prompts = [[g.randrange(100, 40000) for _ in range(args.prompt)] for _ in range(args.batch)]
    answers = [[g.randrange(100, 40000) for _ in range(args.answer)] for _ in range(args.batch)]
    return prompts, answers


# ---------------------------------------------------------------- TRL, in its own venv

SAY = "BENCH "   # the worker's messages to the parent, among TRL's own prints


def clocks() -> tuple[float, float, float, float]:
    """Wall clock; this process's CPU time (all its threads), the part of it
    in the kernel, and its minor page faults (memory mapped in on first touch)."""
    import resource
    use = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), use.ru_utime + use.ru_stime, use.ru_stime, use.ru_minflt


def since(start: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(now - then for now, then in zip(clocks(), start))


def say(**message):
    print(SAY + json.dumps(message), flush=True)


def trl_worker(args):
    """Runs TRL's PPOTrainer for 1 + repeats updates; after each update prints
    its clocks and waits for a line on stdin, so the parent can interleave."""
    os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16" if args.bf16 else "no"
    import torch
    torch.set_num_threads(args.threads)
    import trl.experimental.ppo.ppo_trainer as trl_ppo
    from datasets import Dataset
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer,
                              LlamaConfig, LlamaForSequenceClassification, TrainerCallback)
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    torch.manual_seed(0)
    prompts, answers = episode_tokens(args)
    answers = torch.tensor(answers)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    policy = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    value = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1, dtype=torch.float32)
    reward = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=tokenizer.pad_token_id))
    for m in (value, reward):
        m.config.pad_token_id = tokenizer.pad_token_id
    if args.checkpointing:   # TRL's own flag is a no-op here: its PPO train() never enables it
        for m in (policy, value):
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def fixed_answers(model, queries, local_rollout_forward_batch_size, pad_token_id, generation_config):
        """Stands in for sampling: the fixed answers, and their logits from one forward."""
        query_responses = torch.cat([queries, answers[:len(queries)]], 1)
        logits = []
        for i in range(0, len(queries), local_rollout_forward_batch_size):
            chunk = query_responses[i:i + local_rollout_forward_batch_size]
            out = model(input_ids=chunk, attention_mask=torch.ones_like(chunk))
            logits.append(out.logits[:, queries.shape[1] - 1:-1].float())
        return query_responses, torch.cat(logits)

    trl_ppo.batch_generation = fixed_answers

    class Interleave(TrainerCallback):
        def on_train_begin(self, *a, **kw):
            say(ready=True)
            sys.stdin.readline()
            self.start = clocks()

        def on_step_end(self, *a, **kw):
            say(seconds=since(self.start))
            sys.stdin.readline()
            self.start = clocks()

    updates = 1 + args.repeats
    dataset = Dataset.from_dict({"input_ids": prompts * updates})
    config = PPOConfig(
        output_dir=tempfile.mkdtemp(), report_to=[], save_strategy="no", logging_steps=10**9,
        use_cpu=True, bf16=args.bf16, disable_tqdm=True, gradient_checkpointing=False,
        per_device_train_batch_size=args.micro, gradient_accumulation_steps=args.batch // args.micro,
        num_mini_batches=args.minibatches, num_ppo_epochs=1, total_episodes=args.batch * updates,
        local_rollout_forward_batch_size=args.micro, response_length=args.answer, stop_token=None,
        num_sample_generations=0, learning_rate=2e-7, kl_coef=0.05, cliprange=0.2, cliprange_value=0.2,
        gamma=1.0, lam=1.0, seed=0, dataloader_num_workers=0)
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy, ref_model=reference,
                         reward_model=reward, value_model=value, train_dataset=dataset,
                         eval_dataset=dataset.select(range(args.batch)), callbacks=[Interleave()])
    say(mixed_precision=trainer.accelerator.mixed_precision)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        trainer.train()


# ---------------------------------------------------------------- ours, and the table

def allocator_before() -> None:
    """glibc as rlef's loop set it before ppo.keep_freed_memory: every block of
    1 MB or more its own mapping, unmapped when freed (M_MMAP_THRESHOLD), and
    the heap's top trimmed at glibc's default 128 KB (M_TRIM_THRESHOLD)."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 20)
    libc.mallopt(-1, 128 << 10)


def rlef_worker(args):
    """Our update, once per line on stdin, answering with its clocks."""
    other = args.worker == "rlef-before" and args.before
    sys.path.insert(0, str(Path(args.before).resolve() if other else ROOT))
    import torch
    import ppo
    torch.set_num_threads(args.threads)
    config = ppo.PPOConfig(minibatches=args.minibatches, micro_tokens=args.micro * (args.prompt + args.answer),
                           bf16=args.bf16, checkpointing=args.checkpointing,
                           lora_rank=args.lora if args.worker == "rlef-lora" else 0)
    learner = ppo.build(args.model, config)      # (on CPU: ppo.keep_freed_memory)
    if args.worker == "rlef-before" and not other:
        allocator_before()
    prompts, answers = episode_tokens(args)
    sequences = [ppo.Sequence(p + a, [0] * len(p) + [1] * len(a),
                              [0.0] * (len(p) + len(a) - 1) + [1.0 if i % 2 else -1.0],
                              [0.0] * len(p) + [-2.0] * len(a))
                 for i, (p, a) in enumerate(zip(prompts, answers))]
    import resource
    say(ready=True, cuda=torch.cuda.is_available(),
        trained=sum(p.numel() for m in (learner.policy, learner.value) for p in m.parameters()))
    while sys.stdin.readline():
        start = clocks()
        ppo.update(learner, sequences)
        peak = (torch.cuda.max_memory_allocated() if torch.cuda.is_available()   # the GPU's, or the process's
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        say(seconds=since(start), peak_gib=peak / 2**30)


# name in the table -> the --worker that runs it (TRL's in TRL's own venv)
CONTENDERS = {"rlef ppo.py, before (glibc unmaps blocks >= 1 MB)": "rlef-before",
              "rlef ppo.py": "rlef",
              "TRL 1.12.0 PPOTrainer": "trl"}


def contenders(args) -> dict[str, str]:
    if args.lora:
        return {"rlef ppo.py, full fine-tuning": "rlef", f"rlef ppo.py, LoRA rank {args.lora}": "rlef-lora"}
    if not args.before:
        return CONTENDERS
    if not (Path(args.before) / "ppo.py").is_file():
        sys.exit(f"error: --before {args.before}: no ppo.py there (make one with: git worktree add DIR REV)")
    rev = subprocess.run(["git", "-C", args.before, "log", "-1", "--format=%h %cs"],
                         capture_output=True, text=True).stdout.strip() or "not a git checkout"
    return {f"rlef ppo.py, before ({args.before}: {rev})": "rlef-before", **{
        name: kind for name, kind in CONTENDERS.items() if kind != "rlef-before"}}


class Worker:
    """A contender's process: it builds its trainer and says `ready`; then each
    line sent to it runs one update, and it answers with that update's clocks."""

    def __init__(self, kind: str, args):
        python = args.trl_python if kind == "trl" else sys.executable
        self.said = {}
        self.proc = subprocess.Popen([python, __file__, *sys.argv[1:], "--model", args.model, "--worker", kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def hear(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the worker {self.proc.args[-1]} died; run it by hand to see why")
            if line.startswith(SAY):
                message = json.loads(line[len(SAY):])
                self.said.update(message)
                return message

    def ready(self) -> None:
        while not self.hear().get("ready"):
            pass

    def update(self) -> tuple[float, ...]:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return tuple(self.hear()["seconds"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--batch", type=int, default=16, help="episodes per update (B)")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens per episode (P)")
    parser.add_argument("--answer", type=int, default=128, help="answer tokens per episode (R)")
    parser.add_argument("--minibatches", type=int, default=2, help="optimizer steps per update (K)")
    parser.add_argument("--micro", type=int, default=4, help="episodes per forward/backward (M)")
    parser.add_argument("--repeats", type=int, default=3, help="timed updates each, after one warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in each process")
    parser.add_argument("--no-checkpointing", dest="checkpointing", action="store_false")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--trl-python", default="/tmp/trl-venv/bin/python")
    parser.add_argument("--json", default="", help="also write the medians to this file (bench/all.py)")
    parser.add_argument("--lora", type=int, default=0, help="compare full fine-tuning with LoRA of this rank instead")
    parser.add_argument("--before", default="", metavar="DIR",
                        help="the 'before' row: ppo.py of this other checkout (git worktree add DIR REV)")
    parser.add_argument("--worker", choices=sorted(set(CONTENDERS.values())) + ["rlef-lora"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        sys.path.insert(0, str(ROOT))
        import data
        args.model = data.resolve_model(data.SMOLLM2)
    if args.worker:
        return trl_worker(args) if args.worker == "trl" else rlef_worker(args)

    workers = {name: Worker(kind, args) for name, kind in contenders(args).items()}   # they load side by side
    for w in workers.values():
        w.ready()
    for w in workers.values():        # warm-up
        w.update()
    runs = {name: [] for name in workers}
    for i in range(args.repeats):
        for name, w in workers.items():
            runs[name].append(w.update())
        print(f"repeat {i + 1}/{args.repeats}: " + ", ".join(f"{name} {r[-1][0]:.1f} s ({r[-1][1]:.1f} CPU-s)"
                                                            for name, r in runs.items()), file=sys.stderr, flush=True)
    for w in workers.values():
        w.close()

    tokens = args.batch * (args.prompt + args.answer)
    if args.lora:
        return lora_table(args, workers, runs, tokens)
    precision = workers["TRL 1.12.0 PPOTrainer"].said["mixed_precision"]
    print(describe(args, tokens, f" (TRL accelerate: {precision})"))
    print("| implementation | wall s per update | tokens/s (median wall) | CPU s per update (median) "
          "| of which in the kernel | minor page faults (median) |")
    print("|---|---|---|---|---|---|")
    rates = {}
    for name, r in runs.items():
        wall, cpu, kernel, faults = (statistics.median(x) for x in zip(*r))
        rates[name] = tokens / wall
        print(f"| {name} | {', '.join(f'{x[0]:.1f}' for x in r)} | {rates[name]:.0f} | {cpu:.1f} "
              f"| {kernel:.1f} s ({kernel / cpu:.0%}) | {faults / 1e6:.2f} M |")
    before, now, trl = rates.values()
    print(f"\nratio ours / TRL (median tokens/s): {now / trl:.2f} (before: {before / trl:.2f}); "
          f"ours after / before: {now / before:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"ours_tok_s": now, "ours_before_tok_s": before, "trl_tok_s": trl,
                                               "tokens": tokens, "checkpointing": args.checkpointing}))

def describe(args, tokens: int, precision_note: str = "") -> str:
    """The line above a table: the work every contender did."""
    return (f"\nOne PPO update (policy + value), {Path(args.model).name}, {args.threads} torch threads each: "
            f"B={args.batch} episodes x (P={args.prompt} + R={args.answer}) tokens = {tokens} tokens, "
            f"K={args.minibatches} optimizer steps, microbatch {args.micro} episodes, "
            f"bf16 autocast={args.bf16}{precision_note}, "
            f"activation checkpointing={args.checkpointing}; {args.repeats} updates each after 1 warm-up, "
            f"taking turns; load average at the end {os.getloadavg()[0]:.1f}.\n")


def lora_table(args, workers, runs, tokens):
    print(describe(args, tokens))
    print("| training | trained parameters | wall s per update | tokens/s (median wall) | CPU s per update (median) "
          f"| peak memory ({'GPU' if workers[next(iter(workers))].said.get('cuda') else 'process'}) |")
    print("|---|---|---|---|---|---|")
    rates, peaks = {}, {}
    for name, r in runs.items():
        wall, cpu = statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)
        rates[name], peaks[name] = tokens / wall, workers[name].said["peak_gib"]
        print(f"| {name} | {workers[name].said['trained'] / 1e6:.1f} M | {', '.join(f'{x[0]:.1f}' for x in r)} "
              f"| {rates[name]:.0f} | {cpu:.1f} | {peaks[name]:.2f} GiB |")
    (full, lora), (full_peak, lora_peak) = rates.values(), peaks.values()
    print(f"\nLoRA / full fine-tuning: tokens/s {lora / full:.2f}, peak memory {lora_peak / full_peak:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"full_tok_s": full, "lora_tok_s": lora, "full_peak_gib": full_peak,
                                               "lora_peak_gib": lora_peak, "lora_rank": args.lora, "tokens": tokens}))


if __name__ == "__main__":
    main()
