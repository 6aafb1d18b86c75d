"""ppo.py: each formula against an independent loop in float64, finite-difference
gradients, the episode layout, FSDP2 with 1 vs 2 gloo ranks, and a real PPO run
that learns."""
import copy
import ctypes
import math
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ppo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and OpenMP barriers thrash when
    the two cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def process_group():
    """`ppo.build` makes a 1-rank gloo group when none exists; leave the
    process as we found it."""
    was = dist.is_initialized()
    yield
    if not was and dist.is_initialized():
        dist.destroy_process_group()


def rand(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def random_mask(rows, cols, seed=0):
    """Policy masks with runs of 1s separated by gaps, plus an all-masked row."""
    g = random.Random(seed)
    mask = torch.zeros(rows, cols, dtype=torch.float64)
    for i in range(rows - 1):
        t = g.randint(0, 2)
        while t < cols:
            run = g.randint(1, 4)
            mask[i, t:t + run] = 1
            t += run + g.randint(1, 3)
    return mask   # the last row stays all 0


# ---------------------------------------------------------------- formulas

@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_approx_kl_matches_formula(kind):
    logp, ref = rand(3, 7, seed=1), rand(3, 7, seed=2)
    got = ppo.approx_kl(logp, ref, kind)
    for i in range(3):
        for t in range(7):
            a, b = logp[i, t].item(), ref[i, t].item()
            want = {"k1": a - b, "k2": 0.5 * (a - b) ** 2,
                    "k3": math.exp(b - a) - 1 - (b - a)}[kind]
            assert got[i, t].item() == pytest.approx(want, rel=1e-12, abs=1e-12)
    if kind != "k1":
        assert (got >= 0).all()


def gae_by_loop(rewards, values, mask, gamma, lam):
    """Independent GAE: compress each row to its policy tokens, run the
    textbook recursion over that list, scatter back."""
    adv = torch.zeros_like(values)
    ret = torch.zeros_like(values)
    for i in range(values.shape[0]):
        steps = [t for t in range(values.shape[1]) if mask[i, t]]
        a_next, v_next = 0.0, 0.0
        for t in reversed(steps):
            delta = rewards[i, t].item() + gamma * v_next - values[i, t].item()
            a_next = delta + gamma * lam * a_next
            v_next = values[i, t].item()
            adv[i, t] = a_next
            ret[i, t] = a_next + values[i, t].item()
    return adv, ret


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.9, 0.95), (1.0, 0.5), (0.7, 1.0)])
def test_gae_matches_loop(gamma, lam):
    mask = random_mask(5, 17, seed=3)
    rewards, values = rand(5, 17, seed=4), rand(5, 17, seed=5)
    adv, ret = ppo.gae(rewards, values, mask, gamma=gamma, lam=lam)
    want_adv, want_ret = gae_by_loop(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(adv, want_adv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ret, want_ret, rtol=1e-12, atol=1e-12)
    assert (adv[-1] == 0).all() and (ret[-1] == 0).all()        # the all-masked row
    assert (adv[mask == 0] == 0).all() and (ret[mask == 0] == 0).all()


def test_gae_skips_environment_tokens():
    """Two answers with feedback between them, gamma = lam = 1: the values on
    the feedback tokens must not matter, and the first answer's last token
    bootstraps from the *second answer's* first value."""
    mask = torch.tensor([[1, 1, 0, 0, 1, 1]], dtype=torch.float64)
    values = torch.tensor([[0.1, 0.2, 99.0, -99.0, 0.3, 0.4]], dtype=torch.float64)
    rewards = torch.tensor([[0.0, -0.2, 5.0, 5.0, 0.0, 1.0]], dtype=torch.float64)
    adv, ret = ppo.gae(rewards, values, mask, gamma=0.5, lam=1.0)
    # returns: r + gamma * (next return), over policy tokens only
    g5 = 1.0
    g4 = 0.0 + 0.5 * g5
    g1 = -0.2 + 0.5 * g4
    g0 = 0.0 + 0.5 * g1
    want_ret = torch.tensor([[g0, g1, 0, 0, g4, g5]], dtype=torch.float64)
    torch.testing.assert_close(ret, want_ret)
    torch.testing.assert_close(adv, (want_ret - values) * mask)


def policy_loss_by_loop(logp, old, adv, mask, eps, behaviour=None):
    total, count = 0.0, 0
    for i in range(logp.shape[0]):
        for t in range(logp.shape[1]):
            if not mask[i, t]:
                continue
            r = math.exp(logp[i, t].item() - old[i, t].item())
            if behaviour is not None:
                r *= min(math.exp(logp[i, t].item() - behaviour[i, t].item()), 1.0)
            a = adv[i, t].item()
            total += -min(r * a, min(max(r, 1 - eps), 1 + eps) * a)
            count += 1
    return total / max(count, 1)


@pytest.mark.parametrize("with_behaviour", [False, True])
def test_policy_loss_matches_loop(with_behaviour):
    mask = random_mask(4, 9, seed=6)
    logp = -rand(4, 9, seed=7).abs()
    old = logp + 0.3 * rand(4, 9, seed=8)        # ratios in and out of [0.8, 1.2]
    behaviour = logp + 0.3 * rand(4, 9, seed=9) if with_behaviour else None
    adv = rand(4, 9, seed=10)
    got = ppo.policy_loss(logp, old, adv, mask, clip_eps=0.2, behaviour_logp=behaviour)
    assert got.item() == pytest.approx(policy_loss_by_loop(logp, old, adv, mask, 0.2, behaviour), rel=1e-12)
    empty = ppo.policy_loss(logp, old, adv, torch.zeros_like(mask), behaviour_logp=behaviour)
    assert empty.item() == 0.0


def test_value_loss_matches_loop():
    mask = random_mask(4, 9, seed=11)
    values, old, returns = rand(4, 9, seed=12), rand(4, 9, seed=13), rand(4, 9, seed=14)
    total, count = 0.0, 0
    for i in range(4):
        for t in range(9):
            if mask[i, t]:
                v, o, R = values[i, t].item(), old[i, t].item(), returns[i, t].item()
                clipped = o + min(max(v - o, -0.2), 0.2)
                total += 0.5 * max((v - R) ** 2, (clipped - R) ** 2)
                count += 1
    got = ppo.value_loss(values, old, returns, mask, clip=0.2)
    assert got.item() == pytest.approx(total / count, rel=1e-12)
    assert ppo.value_loss(values, old, returns, torch.zeros_like(mask)).item() == 0.0


def test_policy_loss_gradient_by_finite_differences():
    mask = random_mask(3, 6, seed=15)
    old = -rand(3, 6, seed=16).abs()
    logp = (old + 0.3 * rand(3, 6, seed=17)).requires_grad_()
    adv = rand(3, 6, seed=18)
    assert torch.autograd.gradcheck(lambda lp: ppo.policy_loss(lp, old, adv, mask), (logp,))


def test_off_policy_correction_is_a_stopped_gradient():
    """ratio * stopgrad(c) with c = min(pi/pi_b, 1) is the plain loss with the
    constant c folded into pi_old: same value, same (finite-difference) gradient."""
    mask = random_mask(3, 6, seed=19)
    old = -rand(3, 6, seed=20).abs()
    logp = (old + 0.3 * rand(3, 6, seed=21)).requires_grad_()
    behaviour = old + 0.3 * rand(3, 6, seed=22)
    adv = rand(3, 6, seed=23)
    log_c = (logp - behaviour).clamp(max=0).detach()
    folded = lambda lp: ppo.policy_loss(lp, old - log_c, adv, mask)   # noqa: E731
    loss = ppo.policy_loss(logp, old, adv, mask, behaviour_logp=behaviour)
    assert loss.item() == pytest.approx(folded(logp).item(), rel=1e-12)
    grad, = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(grad, torch.autograd.grad(folded(logp), logp)[0])
    assert torch.autograd.gradcheck(folded, (logp,))


def test_value_loss_gradient_by_finite_differences():
    mask = random_mask(3, 6, seed=24)
    old, returns = rand(3, 6, seed=25), rand(3, 6, seed=26)
    values = (old + 0.3 * rand(3, 6, seed=27)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: ppo.value_loss(v, old, returns, mask), (values,))


# ---------------------------------------------------------------- episode layout, rewards, advantages

def two_turn_episode():
    """prompt(2) | answer without code (3) | feedback(2) | answer (2), solved."""
    ids = [10, 11, 20, 21, 22, 30, 31, 40, 41]
    mask = [0, 0, 1, 1, 1, 0, 0, 1, 1]
    rewards = [0, 0, 0, 0, -0.2, 0, 0, 0, 1.0]
    return ppo.Sequence(ids, mask, rewards, [-1.0 if m else 0.0 for m in mask])


def test_episode_table_action_layout():
    short = ppo.Sequence([1, 2, 3], [0, 1, 1], [0, 0, -1.0], [0, -0.5, -0.5])
    table = ppo.episode_table([two_turn_episode(), short], torch.device("cpu"))
    assert table["inputs"][0].tolist() == [10, 11, 20, 21, 22, 30, 31, 40]
    assert table["actions"][0].tolist() == [11, 20, 21, 22, 30, 31, 40, 41]
    assert table["policy"][0].int().tolist() == [0, 1, 1, 1, 0, 0, 1, 1]
    assert table["turn"][0].tolist() == [-1, 0, 0, 0, -1, -1, 1, 1]
    assert table["turn_start"][0].int().tolist() == [0, 1, 0, 0, 0, 0, 1, 0]  # positions of c_1, c_2
    assert table["env_reward"][0].tolist() == pytest.approx([0, 0, 0, -0.2, 0, 0, 0, 1.0])
    assert table["attention"][1].int().tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert table["policy"][1].int().tolist() == [1, 1, 0, 0, 0, 0, 0, 0]


def test_kl_penalty_per_turn_mean():
    table = ppo.episode_table([two_turn_episode()], torch.device("cpu"))
    kl = torch.where(table["policy"], torch.arange(8.0), 0)          # 1, 2, 3 | 6, 7
    per_token = ppo.rewards_with_kl(table["env_reward"], kl, table["turn"], beta=0.1, turn_mean=False)
    assert per_token[0].tolist() == pytest.approx([0, -0.1, -0.2, -0.5, 0, 0, -0.6, 0.3])
    mean = ppo.rewards_with_kl(table["env_reward"], kl, table["turn"], beta=0.1, turn_mean=True)
    # turn 1 pays 0.1 * mean(1, 2, 3) = 0.2 in all, turn 2 pays 0.1 * mean(6, 7) = 0.65
    assert mean[0, 1:4].sum().item() == pytest.approx(-0.2 - 0.2)
    assert mean[0, 6:8].sum().item() == pytest.approx(1.0 - 0.65)


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.8, 0.9)])
def test_turn_advantages(gamma, lam):
    """A_t = (rewards of turns t, t+1, ...) - V(c_t), each token of a turn alike
    (with gamma, lam < 1: GAE over turns)."""
    table = ppo.episode_table([two_turn_episode()], torch.device("cpu"))
    rewards = torch.where(table["policy"], torch.tensor([[0, .1, .2, .3, 0, 0, .4, .5]]), 0)
    values = torch.tensor([[0, 0.7, 9, 9, 9, 9, -0.3, 9]])   # only turn starts count
    adv, ret = ppo.turn_advantages(rewards, values, table["turn"], table["turn_start"], gamma, lam)
    R1, R2, V1, V2 = 0.6, 0.9, 0.7, -0.3
    A2 = R2 - V2
    A1 = R1 + gamma * V2 - V1 + gamma * lam * A2
    assert adv[0].tolist() == pytest.approx([0, A1, A1, A1, 0, 0, A2, A2])
    assert ret[0].tolist() == pytest.approx([0, A1 + V1, 0, 0, 0, 0, A2 + V2, 0])


def test_a_batch_without_answers():
    """An episode cut before its first answer has no policy token: nothing to
    learn, and nothing may crash."""
    table = ppo.episode_table([ppo.Sequence([1, 2, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0])], torch.device("cpu"))
    zeros = torch.zeros(table["policy"].shape)
    rewards = ppo.rewards_with_kl(table["env_reward"], zeros, table["turn"], beta=0.1, turn_mean=True)
    adv, ret = ppo.turn_advantages(rewards, zeros, table["turn"], table["turn_start"], 1.0, 1.0)
    assert not rewards.any() and not adv.any() and not ret.any()


def test_microbatches_bucket_by_length():
    lengths = torch.tensor([5, 40, 7, 33, 6, 38, 100])
    plan = ppo.microbatches(list(range(7)), lengths, budget=80)
    assert sorted(r for mb in plan for r in mb) == list(range(7))
    for mb in plan:
        assert len(mb) == 1 or len(mb) * max(int(lengths[r]) for r in mb) <= 80
    assert plan == [[6], [1, 5], [3, 2], [4, 0]]   # longest first, neighbours in length together


# ---------------------------------------------------------------- the update on a real (tiny) model

def episodes(n, seed=0, vocab=1000):
    """Random multi-turn episodes: prompt, 1-3 answers with feedback between."""
    g = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [g.randrange(vocab) for _ in range(g.randint(3, 8))]
        mask = [0] * len(ids)
        for turn in range(g.randint(1, 3)):
            if turn:
                k = g.randint(2, 5)
                ids += [g.randrange(vocab) for _ in range(k)]
                mask += [0] * k
            k = g.randint(1, 6)
            ids += [g.randrange(vocab) for _ in range(k)]
            mask += [1] * k
        rewards = [0.0] * len(ids)
        rewards[-1] = g.choice([1.0, -1.0])
        out.append(ppo.Sequence(ids, mask, rewards, [-7.0 if m else 0.0 for m in mask]))
    return out


def small_config(**kw):
    base = dict(bf16=False, lr=1e-3, value_lr=1e-3, warmup_steps=1, minibatches=2, micro_tokens=40)
    return ppo.PPOConfig(**{**base, **kw})


def full_params(learner):
    out = {k: v.clone() for k, v in ppo.iter_full_params(learner.policy)}
    out.update({"value." + k: v.clone() for k, v in ppo.iter_full_params(learner.value)})
    return out


def test_update_logs_and_starts_at_zero_kl(tiny_model):
    learner = ppo.build(tiny_model, small_config(bf16=True))
    stats = ppo.update(learner, episodes(6))
    for key in ("policy_loss", "value_loss", "kl_ref", "approx_kl_old", "clip_frac", "entropy",
                "grad_norm_policy", "grad_norm_value", "value_explained_var", "tokens_per_s"):
        assert math.isfinite(stats[key]), key
    assert stats["kl_ref"] == 0.0            # policy == reference before the first step
    assert learner.step == 2
    again = ppo.update(learner, episodes(6))
    assert again["kl_ref"] != 0.0 and again["approx_kl_old"] >= 0


def test_update_logs_how_far_the_engine_log_probs_are_from_the_trainer(tiny_model):
    """ppo/engine_logp_diff_mean and _max: |log pi_engine - log pi_old| over the
    policy tokens, against the policy's own log-probs computed before the update."""
    learner = ppo.build(tiny_model, small_config())
    batch = episodes(6, seed=3)
    gaps = []
    for s in batch:
        logp = ppo.sequence_logp(learner, s.ids)   # temperature 1, as small_config
        gaps += [abs(logp[j - 1].item() - s.behaviour_logp[j]) for j in range(1, len(s.ids)) if s.policy_mask[j]]
    stats = ppo.update(learner, batch)
    assert stats["engine_logp_diff_mean"] == pytest.approx(sum(gaps) / len(gaps), rel=1e-5)
    assert stats["engine_logp_diff_max"] == pytest.approx(max(gaps), rel=1e-5)


def test_perturb_moves_every_trained_tensor_and_restore_undoes_it_exactly(tiny_model):
    learner = ppo.build(tiny_model, small_config())
    before = full_params(learner)
    originals = ppo.perturb(learner.policy)
    moved = full_params(learner)
    assert all(not torch.equal(moved[k], v) for k, v in before.items() if not k.startswith("value."))
    ppo.restore(learner.policy, originals)
    assert all(torch.equal(v, before[k]) for k, v in full_params(learner).items())


def test_policy_log_probs_are_those_of_the_tempered_distribution(tiny_model):
    """At sampling temperature T the trained policy is softmax(z / T), for the
    policy and the reference alike (the engine samples from it)."""
    from transformers import AutoModelForCausalLM
    inputs = torch.tensor([[1, 5, 7, 2, 9, 4]])
    where = torch.ones_like(inputs, dtype=torch.bool)
    raw = AutoModelForCausalLM.from_pretrained(tiny_model)(inputs).logits[where].float()
    learner = ppo.build(tiny_model, small_config(temperature=0.5))
    for model in (learner.policy, learner.reference):
        z = model(inputs, torch.ones_like(inputs), where)
        torch.testing.assert_close(z.log_softmax(-1), (raw / 0.5).log_softmax(-1), rtol=0, atol=1e-5)


def test_token_log_probs_and_entropy_match_a_loop():
    """log pi(a) = z_a - log sum_b exp(z_b), and H = -sum_a p(a) log p(a), per
    policy position, against a loop in float64 (logits of a wide range)."""
    inputs = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    policy = torch.tensor([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    actions = torch.tensor([[0, 7, 2, 0, 5], [1, 0, 0, 0, 0]])
    z = rand(int(policy.sum()), 11, seed=3) * 20

    def model(inputs_, attention, where):
        assert torch.equal(where, policy)
        return z.clone()

    mb = dict(inputs=inputs, attention=torch.ones_like(inputs), policy=policy, actions=actions)
    logp, logits = ppo.token_logp(model, mb)
    H = ppo.entropy(logits)
    for j, a in enumerate(actions[policy].tolist()):
        row = z[j].tolist()
        top = max(row)
        log_norm = top + math.log(sum(math.exp(x - top) for x in row))
        assert abs(logp[j].item() - (row[a] - log_norm)) < 1e-12
        p = [math.exp(x - log_norm) for x in row]
        assert abs(H[j].item() + sum(q * math.log(q) for q in p if q > 0)) < 1e-12


KERNEL_CACHE_GROWTH = """
import gc, random, sys
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/bench"]   # the root first: bench/sandbox.py is not sandbox
import ppo
from memory import heap_gb                            # bench/memory.py: glibc's view of its heap
learner = ppo.build(sys.argv[1], ppo.PPOConfig(minibatches=2, micro_tokens=2048, checkpointing=False))
g, used = random.Random(0), []
for update in range(18):
    batch = []
    for _ in range(8):   # a new length and a new count of policy tokens in every microbatch
        prompt, answer = g.randint(50, 400), g.randint(20, 200)
        batch.append(ppo.Sequence([g.randrange(100, 40000) for _ in range(prompt + answer)], [0] * prompt + [1] * answer,
                                  [0.0] * (prompt + answer - 1) + [1.0], [0.0] * prompt + [-2.0] * answer))
    ppo.update(learner, batch)
    gc.collect()
    used.append(heap_gb()[1])
print((used[-1] - used[9]) / 8 * 1e3)   # MB more in live blocks per update, once 128 kernels are cached (by ~8 updates)
"""


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc >= 2.33 (mallinfo2)")
def test_updates_of_new_shapes_do_not_keep_memory(tiny_model):
    """ppo bounds oneDNN's and ideep's kernel caches (128 kernels each): once
    they are full, updates whose microbatches have new shapes every time keep
    no more memory from one update to the next. With the libraries' default
    of 1,024 kernels each, the same updates keep ~30 MB more every time, for
    dozens of updates (a fresh process each: the caches read their size at
    the first matmul)."""
    torchrun = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    ours = {k: v for k, v in os.environ.items() if k not in torchrun}   # its own 1-rank group, not this one's port

    def growth(**env):
        run = subprocess.run([sys.executable, "-c", KERNEL_CACHE_GROWTH, tiny_model, str(ROOT)],
                             env={**ours, **env}, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return float(run.stdout.split()[-1])
    bounded = growth()
    default = growth(ONEDNN_PRIMITIVE_CACHE_CAPACITY="1024", LRU_CACHE_CAPACITY="1024")
    assert bounded < 1 and default > 10, (bounded, default)


def test_micro_batching_does_not_change_the_update(tiny_model):
    """Gradient accumulation over 1-row microbatches gives the same weights as
    one microbatch per step: the loss is normalised per minibatch, not per microbatch."""
    results = []
    for micro_tokens in (8, 4096):
        torch.manual_seed(0)
        learner = ppo.build(tiny_model, small_config(micro_tokens=micro_tokens, value_per_turn=False))
        ppo.update(learner, episodes(8, seed=1))
        results.append(full_params(learner))
    for k in results[0]:   # tolerance: see test_fsdp_one_and_two_ranks_agree
        torch.testing.assert_close(results[0][k], results[1][k], rtol=0, atol=2e-5, msg=k)


def test_iter_full_params_names_match_checkpoint(tiny_model):
    from safetensors import safe_open
    learner = ppo.build(tiny_model, small_config())
    with safe_open(f"{tiny_model}/model.safetensors", "pt") as f:
        names = set(f.keys())
        params = dict(ppo.iter_full_params(learner.policy))
        assert set(params) == names
        for k in names:
            torch.testing.assert_close(params[k], f.get_tensor(k))


def assert_same(a, b, where="state"):
    """Nested dicts/lists of tensors and numbers, equal to the bit."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_checkpoint_round_trip(tiny_model, tmp_path):
    """A load gives back exactly what was saved: both models, AdamW's moments
    and step counts, the scheduler, beta and the step; so the next update after
    the load is the one that followed the save, to the bit."""
    learner = ppo.build(tiny_model, small_config(kl_target=0.01))
    ppo.update(learner, episodes(4))
    # adaptive beta (Ziegler et al.): KL 0 < target, error clipped to -0.2, over 4 of 10,000 episodes
    assert learner.beta == pytest.approx(0.05 * (1 - 0.2 * 4 / 10_000))
    ppo.save_checkpoint(learner, str(tmp_path / "ckpt"))
    saved, step, beta = full_params(learner), learner.step, learner.beta
    saved_optimizer, saved_scheduler = (copy.deepcopy(x.state_dict()) for x in (learner.optimizer, learner.scheduler))
    assert saved_optimizer["state"] and all(s["step"] == 2 for s in saved_optimizer["state"].values())
    ppo.update(learner, episodes(4, seed=2))
    after_save = full_params(learner)
    ppo.load_checkpoint(learner, str(tmp_path / "ckpt"))
    assert (learner.step, learner.beta) == (step, beta)
    assert_same(full_params(learner), saved)
    assert_same(learner.optimizer.state_dict(), saved_optimizer, "optimizer")
    assert_same(learner.scheduler.state_dict(), saved_scheduler, "scheduler")
    ppo.update(learner, episodes(4, seed=2))
    assert_same(full_params(learner), after_save)


# ---------------------------------------------------------------- FSDP2: 1 vs 2 gloo ranks

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_updates(model, mine, checkpoint=None):
    """Both value placements, two updates each, on this rank's episodes. With
    `checkpoint`, also save, update once more, load, and report how far the
    loaded weights are from the saved ones."""
    out = {}
    for value_per_turn in (True, False):
        learner = ppo.build(model, small_config(micro_tokens=24, value_per_turn=value_per_turn))
        stats = [ppo.update(learner, mine) for _ in range(2)]
        out[value_per_turn] = (full_params(learner), stats)
    if checkpoint:
        saved = out[False][0]
        ppo.save_checkpoint(learner, checkpoint)
        ppo.update(learner, mine)
        ppo.load_checkpoint(learner, checkpoint)
        out["checkpoint"] = max((v - saved[k]).abs().max().item() for k, v in full_params(learner).items())
    return out


def fsdp_worker(rank, world, port, model, out, shares, checkpoint):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    result = two_updates(model, [episodes(8, seed=5)[i] for i in shares[rank]], checkpoint)
    if rank == 0:
        torch.save(result, out)
    dist.destroy_process_group()


def test_fsdp_one_and_two_ranks_agree(tiny_model, tmp_path):
    """The same 8 episodes, two updates of 2 optimizer steps each, per-turn and
    per-token values: once on one rank (this process), once split unevenly over
    two gloo ranks (6 + 2 episodes, so rank 1 pads with dummy microbatches).
    The global minibatches are the same ({0..3}, {4..7}), so the weights must
    agree to fp32 round-off. Tolerance: Adam divides each gradient by its own
    magnitude, so entries whose gradient is ~0 turn round-off into visible
    steps; we allow 2e-5, 2% of one step (lr 1e-3), on updates of ~4e-3."""
    one = two_updates(tiny_model, episodes(8, seed=5))
    out = str(tmp_path / "world2.pt")
    shares = [[0, 1, 2, 4, 5, 6], [3, 7]]
    mp.spawn(fsdp_worker, args=(2, free_port(), tiny_model, out, shares, str(tmp_path / "ckpt")), nprocs=2)
    two = torch.load(out)
    assert two["checkpoint"] == 0.0          # a sharded checkpoint restores the weights exactly
    for value_per_turn in (True, False):
        (params1, stats1), (params2, stats2) = one[value_per_turn], two[value_per_turn]
        for k in params1:
            torch.testing.assert_close(params2[k], params1[k], rtol=0, atol=2e-5, msg=k)
        for a, b in zip(stats1, stats2):
            for k in ("policy_loss", "value_loss", "kl_ref", "grad_norm_policy", "grad_norm_value", "tokens"):
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k
        assert stats1[1]["kl_ref"] > 0             # the weights did move


# ---------------------------------------------------------------- it learns

@pytest.fixture(scope="module")
def vocab16_model(tmp_path_factory):
    """A 2-layer Llama over 16 tokens: the target token is sampled from the start."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    folder = tmp_path_factory.mktemp("vocab16")
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def rewarded_token_run(learner, updates: int = 12) -> tuple[float, list[float]]:
    """A real PPO loop: sample one-token answers from the policy, reward +1 for
    the target token and -1 otherwise, update. Returns p(target) at the start
    and after each update, stopping once it passes 0.5."""
    prompt, target = [1, 2, 3], 7
    generator = torch.Generator().manual_seed(0)

    def next_token_logp():
        with torch.no_grad():
            inputs = torch.tensor([prompt])
            where = torch.tensor([[False, False, True]])
            return learner.policy(inputs, torch.ones_like(where), where).log_softmax(-1)[0]

    start = next_token_logp()[target].exp().item()
    history = []
    for _ in range(updates):
        logp = next_token_logp()
        answers = torch.multinomial(logp.exp(), 32, replacement=True, generator=generator).tolist()
        ppo.update(learner, [ppo.Sequence(prompt + [a], [0, 0, 0, 1], [0, 0, 0, 1.0 if a == target else -1.0],
                                          [0, 0, 0, logp[a].item()]) for a in answers])
        history.append(next_token_logp()[target].exp().item())
        if history[-1] > 0.5:
            break
    return start, history


def test_ppo_raises_the_probability_of_a_rewarded_token(vocab16_model):
    """rewarded_token_run: p(target) must pass 0.5 within 12 updates (it starts near 1/16)."""
    learner = ppo.build(vocab16_model, small_config(lr=1e-2, value_lr=1e-2, checkpointing=False))
    start, history = rewarded_token_run(learner)
    assert start < 0.15 and history[-1] > 0.5, (start, history)
