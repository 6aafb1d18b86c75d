"""The summary a run ends with, on a run folder written as the loop writes it:
real episodes (the transformers engine on a tiny random model, the real
sandbox) logged by rlef.Log for two steps."""
import json
import random
import statistics
from pathlib import Path

import data
import rlef
from rlef import Config
from sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def test_the_summary_shows_steps_an_episode_with_feedback_tensorboard_and_the_gpu_run(tiny_model, tmp_path):
    cfg = Config(engine="hf", engine_dtype="float32", max_turns=2, max_new_tokens=8, max_context=1024,
                 out=str(tmp_path), transcripts_per_step=2)
    tok = data.load_tokenizer(tiny_model)
    engine = rlef.make_engine(tiny_model, cfg)
    log = rlef.Log(cfg, 0)
    with Sandbox(workers=2) as sandbox:
        for step in (1, 2):
            episodes = rlef.rollout(engine, sandbox, tok, data.load_easy("valid")[step:step + 2], cfg,
                                    random.Random(step))
            log.write(step, {**rlef.episode_metrics(episodes, cfg), "time/step_s": 1.5 * step}, episodes)
    log.tb.close()
    text = rlef.summary(str(tmp_path))
    lines = text.splitlines()
    # one row per step: reward and solve rate as metrics.jsonl has them
    for row in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()):
        assert f"{row['step']} | {row['reward']:+.2f} | {row['solved']:.0%} | 2 | {row['time/step_s']:.0f}" in lines
    # a random model writes no code, so every episode got feedback: the latest, whole
    episode = json.loads((tmp_path / "transcripts.jsonl").read_text().splitlines()[-1])
    assert f"One episode with feedback: step 2, {episode['problem']}, verdicts NOCODE -> NOCODE" in text
    assert [l for l in lines if l.startswith("--- ")] == [
        "--- the problem ---", "--- the model ---", "--- the feedback ---", "--- the model ---"]
    assert data.no_code_message().splitlines()[0] in text
    assert f"--logdir {tmp_path / 'tensorboard'}" in text and list((tmp_path / "tensorboard").iterdir())
    # the GPU run, from results/gpu-demo's own files
    gpu = [json.loads(l) for l in (ROOT / "results" / "gpu-demo" / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["time/step_s"] for r in gpu if "reward" in r]
    assert f"median step {statistics.median_high(seconds):.0f} s" in text
    assert "--preset gpu-demo" in text


def test_clip_folds_long_lines_keeps_a_message_short_and_says_what_it_left_out():
    assert rlef.clip("a\nb\nc\nd", lines=2) == "a\nb\n[... 2 more lines]"
    assert rlef.clip("x" * 25 + "\n\ny", width=10) == "xxxxxxxxxx\nxxxxxxxxxx\nxxxxx\n\ny"
