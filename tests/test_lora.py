"""LoRA (ppo.LoRAModel): one frozen base serves the policy (base + policy
adapter), the reference (the base alone) and the value model (base + value
adapter + head). On conftest's tiny random Llama, in fp32 unless said."""
import json

import pytest
import torch
import torch.multiprocessing as mp

import ppo
from test_ppo import assert_same, episodes, free_port, rewarded_token_run, small_config


def lora_config(**kw):
    return small_config(**{"lora_rank": 4, "lora_alpha": 8.0, **kw})


def logits(model, inputs):
    where = torch.ones_like(inputs, dtype=torch.bool)
    with torch.no_grad():
        return model(inputs, torch.ones_like(inputs), where)


INPUTS = torch.tensor([[1, 5, 7, 2, 9, 4, 11, 3], [8, 8, 2, 6, 1, 0, 5, 7]])


def base_logits(model_path, temperature=1.0):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(model_path)(INPUTS).logits.float() / temperature


def test_zero_initialised_adapters_give_exactly_the_base_log_probs(tiny_model):
    """B = 0: the policy is the base, to the bit, and so is the reference;
    so the KL to the reference is exactly 0 before the first update."""
    learner = ppo.build(tiny_model, lora_config(temperature=0.7))
    base = base_logits(tiny_model, 0.7).flatten(0, 1)
    assert torch.equal(logits(learner.policy, INPUTS), logits(learner.reference, INPUTS))
    torch.testing.assert_close(logits(learner.policy, INPUTS), base, rtol=0, atol=1e-5)  # (other kernels)
    assert ppo.update(learner, episodes(6))["kl_ref"] == 0.0


def test_only_the_adapters_and_the_value_head_are_trained(tiny_model):
    """The policy's loss reaches only the policy adapter, the value loss only the
    value adapter and head; the base has no gradients and no optimizer state;
    updates leave it bit for bit, and the reference with it."""
    learner = ppo.build(tiny_model, lora_config())
    shared = learner.policy.shared
    names = {id(p): n for n, p in shared.named_parameters()}
    base = {n: p.clone() for n, p in shared.named_parameters() if not p.requires_grad}
    assert base and all(".lora_" not in n and not n.startswith("value_head.") for n in base)
    policy_params = [names[id(p)] for p in learner.optimizer.param_groups[0]["params"]]
    value_params = [names[id(p)] for p in learner.optimizer.param_groups[1]["params"]]
    linears = 7 * 2                                  # q k v o gate up down, 2 layers
    assert len(policy_params) == 2 * linears and all(n.endswith(".policy") for n in policy_params)
    assert len(value_params) == 2 * linears + 2 and all(n.endswith(".value") for n in value_params[:-2])
    assert value_params[-2:] == ["value_head.weight", "value_head.bias"]

    where = torch.ones_like(INPUTS, dtype=torch.bool)
    learner.policy(INPUTS, torch.ones_like(INPUTS), where).logsumexp(-1).sum().backward()
    assert {n for n, p in shared.named_parameters() if p.grad is not None} == set(policy_params)
    assert all(p.grad.abs().sum() > 0 for n, p in shared.named_parameters() if n.endswith("lora_B.policy"))
    learner.optimizer.zero_grad(set_to_none=True)
    learner.value(INPUTS, torch.ones_like(INPUTS), where).sum().backward()
    assert {n for n, p in shared.named_parameters() if p.grad is not None} == set(value_params)
    learner.optimizer.zero_grad(set_to_none=True)

    reference = logits(learner.reference, INPUTS)
    for seed in range(2):
        ppo.update(learner, episodes(6, seed=seed))
    assert all(torch.equal(p, base[n]) for n, p in shared.named_parameters() if not p.requires_grad)
    assert torch.equal(logits(learner.reference, INPUTS), reference)
    assert not torch.equal(logits(learner.policy, INPUTS), reference)
    assert len(learner.optimizer.state) == len(policy_params) + len(value_params)


def test_the_engine_gets_w_plus_scaled_ba_under_the_checkpoint_names(tiny_model):
    """ppo.policy_weights: every tensor of the model's file under its own name;
    an adapted one is W + (alpha / r) B A (here computed by hand), the others
    the untouched base. The trainer's parameters are not changed by it."""
    from safetensors import safe_open
    learner = ppo.build(tiny_model, lora_config())
    ppo.update(learner, episodes(6))
    ppo.update(learner, episodes(6, seed=1))
    params = dict(learner.policy.shared.named_parameters())
    weights = {k: v.clone() for k, v in ppo.policy_weights(learner)}
    with safe_open(f"{tiny_model}/model.safetensors", "pt") as f:
        assert set(weights) == set(f.keys())
        for name in f.keys():
            module = name.removesuffix(".weight")
            if f"{module}.lora_A.policy" in params:
                A, B = params[f"{module}.lora_A.policy"], params[f"{module}.lora_B.policy"]
                expected = f.get_tensor(name) + 8.0 / 4 * (B @ A)
                assert B.abs().sum() > 0, name
            else:
                expected = f.get_tensor(name)
            torch.testing.assert_close(weights[name], expected, rtol=0, atol=1e-6, msg=name)
    # the engine's forward with these weights is the trainer's policy (fp32 round-off)
    from transformers import AutoModelForCausalLM
    engine = AutoModelForCausalLM.from_pretrained(tiny_model)
    engine.load_state_dict(weights, strict=False)
    torch.testing.assert_close(logits(learner.policy, INPUTS), engine(INPUTS).logits.flatten(0, 1), rtol=0, atol=1e-5)


def test_perturb_moves_every_merged_tensor_and_restore_undoes_it(tiny_model):
    """rlef.check_sync's change with LoRA: B starts at zero, so the change is
    noise of rms 0.05 in every B (not a share of B's size); every adapted
    tensor the engine gets moves, and nothing else."""
    learner = ppo.build(tiny_model, lora_config())
    before = {k: v.clone() for k, v in ppo.policy_weights(learner)}
    trained = [p.clone() for p in learner.policy.parameters()]
    originals = ppo.perturb(learner.policy)
    moved = dict(ppo.policy_weights(learner))
    adapted = {f"{n}.weight" for n, _ in learner.policy.shared.adapted()}
    assert len(adapted) == 14 and all(not torch.equal(moved[k], before[k]) for k in adapted)
    assert all(torch.equal(moved[k], before[k]) for k in before.keys() - adapted)
    ppo.restore(learner.policy, originals)
    assert all(torch.equal(a, b) for a, b in zip(learner.policy.parameters(), trained, strict=True))


def test_checkpoint_round_trip_holds_the_adapters_value_head_and_optimizer(tiny_model, tmp_path):
    """The trainer checkpoint of a LoRA run holds what is trained and its AdamW
    state, not the base (it comes from the model); a load gives them back to the
    bit, and the next update after the load is the one after the save."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    learner = ppo.build(tiny_model, lora_config())
    ppo.update(learner, episodes(4))
    ppo.save_checkpoint(learner, str(tmp_path / "ckpt"))
    trained = lambda: {n: p.clone() for n, p in learner.policy.shared.named_parameters() if p.requires_grad}  # noqa: E731
    saved, saved_optimizer = trained(), {k: v for k, v in learner.optimizer.state_dict().items()}
    saved_optimizer = json.loads(json.dumps(saved_optimizer, default=lambda t: t.tolist()))
    dcp_to_torch_save(tmp_path / "ckpt", tmp_path / "whole.pt")
    whole = torch.load(tmp_path / "whole.pt", weights_only=False)
    assert set(whole["model"]) == set(saved), sorted(whole)[:5]
    ppo.update(learner, episodes(4, seed=2))
    after_save = trained()
    ppo.load_checkpoint(learner, str(tmp_path / "ckpt"))
    assert_same(trained(), saved)
    assert json.loads(json.dumps(learner.optimizer.state_dict(), default=lambda t: t.tolist())) == saved_optimizer
    ppo.update(learner, episodes(4, seed=2))
    assert_same(trained(), after_save)


def test_peft_loads_the_saved_adapter_and_gives_the_policy_and_the_merged_folder(tiny_model, tmp_path):
    """The policy adapter in peft's format: PeftModel.from_pretrained(base,
    folder) computes the trainer's policy (fp32 round-off), and the merged
    Hugging Face folder rlef writes (bf16) gives the same log-probs within
    bf16 rounding of the weights."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM
    import data
    import rlef
    learner = ppo.build(tiny_model, lora_config(lr=3e-2))
    for seed in range(3):
        ppo.update(learner, episodes(6, seed=seed))
    ppo.save_adapter(learner, str(tmp_path / "adapter"), tiny_model)
    rlef.save_policy(learner, tiny_model, data.load_tokenizer(tiny_model), str(tmp_path / "policy"))
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8.0 and len(config["target_modules"]) == 7
    adapted = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "adapter")
    ours = logits(learner.policy, INPUTS).log_softmax(-1)
    with torch.no_grad():
        theirs = adapted(INPUTS).logits.flatten(0, 1).float().log_softmax(-1)
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "policy", dtype=torch.float32)(INPUTS).logits
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)
    assert not torch.allclose(ours, base_logits(tiny_model).flatten(0, 1).log_softmax(-1), atol=1e-3)  # it trained
    gap = (merged.flatten(0, 1).float().log_softmax(-1) - ours).abs()
    assert gap.mean() < 0.01 and gap.max() < 0.1, (gap.mean(), gap.max())


@pytest.fixture(scope="module")
def vocab16_wide_head(tmp_path_factory):
    """test_ppo's 16-token Llama, its weights drawn 25x wider (std 0.5). LoRA
    leaves the LM head frozen: with test_ppo's (std 0.02, 32 wide, behind an
    RMSNorm) no hidden state can raise the target's probability above ~0.11,
    which is where LoRA's run of that test stopped."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         initializer_range=0.5)
    folder = tmp_path_factory.mktemp("vocab16-wide")
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def test_ppo_with_lora_raises_the_probability_of_a_rewarded_token(vocab16_wide_head):
    """test_ppo's learning test (rewarded_token_run) with LoRA (rank 4): p(target)
    must pass 0.5 within 12 updates (it starts below 0.15)."""
    learner = ppo.build(vocab16_wide_head, lora_config(lr=1e-2, value_lr=1e-2, checkpointing=False))
    start, history = rewarded_token_run(learner)
    assert start < 0.15 and history[-1] > 0.5, (start, history)


def lora_updates(model, mine, bf16, checkpoint=None):
    """Two updates with LoRA (activation checkpointing on) on this rank's
    episodes; the trained tensors, whole, and the stats. With `checkpoint`:
    save, update, load, and how far the loaded tensors are from the saved."""
    learner = ppo.build(model, lora_config(micro_tokens=24, bf16=bf16))
    stats = [ppo.update(learner, mine) for _ in range(2)]
    trained = lambda: {n: ppo.full(p).clone() for n, p in learner.policy.shared.named_parameters()  # noqa: E731
                       if p.requires_grad}
    weights = {k: v.clone() for k, v in ppo.policy_weights(learner)}
    out = dict(trained=trained(), weights=weights, stats=stats,
               base_dtype=next(p for p in learner.policy.shared.parameters() if not p.requires_grad).dtype)
    if checkpoint:
        saved = trained()
        ppo.save_checkpoint(learner, checkpoint)
        ppo.update(learner, mine)
        ppo.load_checkpoint(learner, checkpoint)
        out["checkpoint"] = max((v - saved[k]).abs().max().item() for k, v in trained().items())
    return out


def lora_worker(rank, world, port, model, out, shares, checkpoint):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    result = {"fp32": lora_updates(model, [episodes(8, seed=5)[i] for i in shares[rank]], False, checkpoint),
              "bf16": lora_updates(model, [episodes(8, seed=5)[i] for i in shares[rank]], True)}
    if rank == 0:
        torch.save(result, out)
    dist.destroy_process_group()


def test_two_ranks_train_with_lora_as_one_does(tiny_model, tmp_path):
    """FSDP2 over two gloo ranks, the frozen base sharded with the adapters:
    the same 8 episodes split 6 + 2 give one rank's adapters, value head and
    merged weights to fp32 round-off (test_ppo's tolerance), and a sharded
    checkpoint restores them exactly. In bf16 (the base then in bf16, the
    adapters in fp32: one FSDP2 unit holds both) it runs and trains too."""
    one = lora_updates(tiny_model, episodes(8, seed=5), False)
    out = str(tmp_path / "world2.pt")
    shares = [[0, 1, 2, 4, 5, 6], [3, 7]]
    mp.spawn(lora_worker, args=(2, free_port(), tiny_model, out, shares, str(tmp_path / "ckpt")), nprocs=2)
    two = torch.load(out)
    assert two["fp32"]["checkpoint"] == 0.0
    for key in ("trained", "weights"):
        for name, value in one[key].items():
            torch.testing.assert_close(two["fp32"][key][name], value, rtol=0, atol=2e-5, msg=name)
    for a, b in zip(one["stats"], two["fp32"]["stats"]):
        for k in ("policy_loss", "value_loss", "kl_ref", "grad_norm_policy", "grad_norm_value", "tokens"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k
    assert one["stats"][0]["kl_ref"] == 0.0 and one["stats"][1]["kl_ref"] != 0.0
    if ppo.native_bf16():
        assert two["bf16"]["base_dtype"] == torch.bfloat16
    assert two["bf16"]["stats"][1]["kl_ref"] != 0.0 and all(
        (v != 0).any() for k, v in two["bf16"]["trained"].items() if "lora_B.policy" in k)


def test_check_memory_knows_lora(tmp_path, monkeypatch):
    """rlef.check_memory on a GPU (faked: its total memory), for Llama 3.1 8B's
    shapes (a config alone: nothing is loaded): the one-GPU preset fits an
    80 GB GPU, full fine-tuning there and the preset on a 24 GB GPU get one
    `error:` line with the numbers, and so does a vLLM share too small for
    the engine's weights. 167.8 M adapter parameters: docs/training.md's plan."""
    import types
    from transformers import LlamaConfig
    import rlef
    LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False).save_pretrained(tmp_path)
    assert rlef.count_parameters(str(tmp_path), 32) == (8_030_261_248, 167_772_160)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ppo, "native_bf16", lambda: True)

    def check(gpu_bytes, *flags):
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(total_memory=gpu_bytes))
        rlef.check_memory(str(tmp_path), rlef.parse_config(["--preset", "llama3.1-8b-1gpu", *flags])[0], world=1)

    check(85e9)                                   # an 80 GB GPU: 17.5 + 43.5 of 79.2 GiB
    with pytest.raises(SystemExit, match=r"^error: .* fully fine-tuned needs about 312.8 GiB per rank "
                                         r"\(trainer 269.2 \+ engine 43.5; 1 ranks\), the GPU is 79.2 GiB"):
        check(85e9, "--lora-rank", "0")
    with pytest.raises(SystemExit, match=r"^error: .* with LoRA of rank 32 \(168 M adapter parameters\) needs "
                                         r"about 32.4 GiB per rank \(trainer 17.5 \+ engine 15.0"):
        check(25.4e9)
    with pytest.raises(SystemExit, match=r"^error: --gpu-memory-utilization 0.2 gives vLLM 15.8 GiB"):
        check(85e9, "--gpu-memory-utilization", "0.2")
