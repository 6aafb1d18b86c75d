"""The PPO update's memory, update after update, on a CPU: does its peak creep?

The cpu-learn run (results/cpu-learn) saw a rank's peak rise at every step,
15.5 -> 21.7 GB in 13 steps, while its memory after each step's trim rose
only 6.7 -> 7.4 GB. This reproduces the update alone, in one process: one
rank, SmolLM2-135M, the gpu-demo preset's PPO settings at that run's
4,096-token microbatches, batches of multi-turn episodes of random lengths
(a new draw every update, as a run's batches are), and after each update the
loop's own trim (rlef.release_memory). Per update it prints:

- peak: the update's peak resident memory (rlef.peak_rss_gb, reset before it);
- heap, used, free: glibc's view just after the update, before the trim
  (mallinfo2: bytes the heap spans, bytes in live blocks, bytes free in it);
- after trim: the resident memory the next step starts from.

A heap that grows while `used` does not is fragmentation: free space that
the next update's blocks do not fit. `used` that grows is memory that lives
on from update to update.

    .venv/bin/python bench/memory.py [--updates 5] [--episodes 12]
    .venv/bin/python bench/memory.py --mmap-mb 64      # blocks of 64 MB or more mapped, as a trial
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 .venv/bin/python bench/memory.py   # without oneDNN's kernel cache
"""
import argparse
import ctypes
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

import data
import ppo
import rlef


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def heap_gb() -> tuple[float, float, float]:
    """glibc's heap: (bytes it spans, bytes in live blocks, bytes free), in GB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return info.arena / 1e9, info.uordblks / 1e9, info.fordblks / 1e9


def episodes(g: random.Random, n: int) -> list[ppo.Sequence]:
    """n episodes of 1-3 turns: a prompt of 250-450 tokens or feedback of
    60-200, then an answer of 60-192 tokens (the preset's max_new_tokens)."""
    batch = []
    for _ in range(n):
        ids, mask = [], []
        for turn in range(g.choice([1, 1, 2, 3])):
            context, answer = g.randint(250, 450) if turn == 0 else g.randint(60, 200), g.randint(60, 192)
            ids += [g.randrange(100, 40000) for _ in range(context + answer)]
            mask += [0] * context + [1] * answer
        rewards = [0.0] * (len(ids) - 1) + [g.choice([-1.0, 1.0])]
        batch.append(ppo.Sequence(ids, mask, rewards, [-2.0 if m else 0.0 for m in mask]))
    return batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=data.SMOLLM2, help="model folder (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=12, help="episodes per update")
    parser.add_argument("--minibatches", type=int, default=2, help="optimizer steps per update")
    parser.add_argument("--micro-tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mmap-mb", type=int, default=0,
                        help="after ppo.build, map blocks of this many MB or more (glibc's M_MMAP_THRESHOLD)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = ppo.PPOConfig(lr=3e-5, value_lr=1e-4, warmup_steps=4, minibatches=args.minibatches,
                           micro_tokens=args.micro_tokens, checkpointing=False, temperature=0.5)
    learner = ppo.build(data.resolve_model(args.model), config)   # (ppo.keep_freed_memory)
    if args.mmap_mb:
        ctypes.CDLL("libc.so.6").mallopt(-3, args.mmap_mb << 20)
    g = random.Random(0)
    print(f"{'update':>6} {'tokens':>6} {'s':>6} {'peak GB':>8} {'heap':>6} {'used':>6} {'free':>6} {'after trim':>10}")
    for u in range(args.updates):
        batch = episodes(g, args.episodes)
        rlef.release_memory()
        rlef.peak_rss_gb(reset=True)
        start = time.perf_counter()
        ppo.update(learner, batch)
        seconds, peak, (heap, used, free) = time.perf_counter() - start, rlef.peak_rss_gb(), heap_gb()
        after = rlef.release_memory()
        print(f"{u:>6} {sum(len(s.ids) for s in batch):>6} {seconds:>6.0f} {peak:>8.2f} {heap:>6.2f} "
              f"{used:>6.2f} {free:>6.2f} {after:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
