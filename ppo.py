"""PPO for RLEF: the learning half, written to be read next to the papers.

    RLEF   Gehring et al. 2025, "RLEF: Grounding Code LLMs in Execution Feedback
           with Reinforcement Learning" (arXiv 2410.02089).
    PPO    Schulman et al. 2017, "Proximal Policy Optimization Algorithms".
    GAE    Schulman et al. 2016, "High-Dimensional Continuous Control Using
           Generalized Advantage Estimation".
    k1-k3  Schulman 2020, "Approximating KL Divergence" (joschu.net/blog/kl-approx.html).

An episode is one conversation: prompt, answer, feedback, answer, ... Its tokens
are either *policy* tokens (sampled by the model) or *environment* tokens
(prompt, feedback). Only policy tokens are actions: they get log-probabilities,
rewards, advantages and losses; environment tokens are context.

Reading order:
  1. the formulas, one function each: approx_kl, gae, policy_loss, value_loss;
  2. the episode table: how a list of `Sequence`s becomes padded [n, T] tensors
     in the *action layout* (column j = token ids[j+1], predicted at position j);
  3. rewards and advantages (per turn, the paper's default, or per token);
  4. the models, FSDP2 and the optimizer (`build`); with `lora_rank` > 0, LoRA:
     one frozen base serves the policy, the reference and the value model;
  5. `update`: experience pass, then K minibatch steps with gradient accumulation.
docs/ppo.md has the formulas as equations, and the benchmark against TRL.

Distributed: one code path. `build` joins the torch.distributed group that
torchrun set up (nccl on GPUs, gloo on CPU) or, under a plain `python`, makes a
1-rank gloo group; with more than one rank it shards all three models with
FSDP2 (`fully_shard` per decoder layer). Every rank calls `update` with its
own share of the episodes; losses are normalised by global token counts, so
the result does not depend on how the episodes are shared out.
"""
from __future__ import annotations

import functools
import math
import os
import socket
import time
import zlib
from dataclasses import dataclass

# oneDNN (PyTorch's CPU matmuls) and ideep keep a compiled kernel for every shape
# they meet, up to 1,024 each (ONEDNN_PRIMITIVE_CACHE_CAPACITY, LRU_CACHE_CAPACITY).
# A microbatch's shapes are its length and its number of policy tokens: new at
# almost every microbatch, so the caches filled up with kernels used once, ~60 MB
# an update on SmolLM2, and their blocks, made among an update's freed
# activations, cut glibc's heap into pieces the next update's tensors did not fit:
# a rank's peak rose at every step (docs/results.md, bench/memory.py). 128
# kernels are more than one microbatch's forward and backward use, so every
# layer after the first still finds its kernels. Read at the first matmul: set
# before torch computes anything, and only where the user has not.
for _cache in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
    os.environ.setdefault(_cache, "128")

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.nn import functional as F
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

@dataclass
class PPOConfig:
    """Hyperparameters; defaults are the paper's where it states them."""
    lr: float = 2e-7                # policy AdamW learning rate (RLEF: 2e-7)
    value_lr: float = 2e-6          # value model learning rate (ours: the paper gives one rate;
                                    # its value head starts from zero and must learn faster)
    weight_decay: float = 0.1       # AdamW weight decay (RLEF: 0.1)
    warmup_steps: int = 50          # linear warm-up, in optimizer steps (RLEF: 50)
    clip_eps: float = 0.2           # PPO ratio clip epsilon (RLEF: 0.2; PPO Eq. 7)
    value_clip: float = 0.2         # value clip (RLEF: 0.2)
    beta: float = 0.05              # KL penalty coefficient to the initial policy (RLEF: 0.05)
    kl_estimator: str = "k1"        # per-token KL estimate in the reward: k1, k2 or k3
    kl_turn_mean: bool = True       # divide the penalty by the turn's length: the penalty of a
                                    # turn is then beta * mean log-ratio (RLEF's per-response mean)
    kl_target: float | None = None  # adaptive beta (Ziegler et al. 2019): target mean KL per policy
                                    # token, in nats; None keeps beta fixed (RLEF)
    kl_horizon: int = 10_000        # adaptive beta: episodes over which beta adapts (Ziegler: 10k)
    temperature: float = 1.0        # sampling temperature in training (RLEF: 1.0): the policy PPO
                                    # trains is softmax(logits / T), the one the engine samples from
    gamma: float = 1.0              # discount (RLEF: 1, no discounting)
    lam: float = 1.0                # GAE lambda (RLEF: 1, i.e. return minus baseline)
    value_per_turn: bool = True     # one value per turn, V(c_t) (RLEF); False: one per token (PPO-RLHF)
    minibatches: int = 4            # optimizer steps per batch of episodes (RLEF: 1024 -> 4 x 256)
    micro_tokens: int = 4096        # padded tokens per forward/backward; gradient accumulation
                                    # over these fits any minibatch in memory (ours)
    max_grad_norm: float = 1.0      # gradient clipping, per model (ours; the paper does not say)
    off_policy_correction: bool = True  # ratio *= stopgrad(min(pi/pi_behaviour, 1)) (RLEF)
    bf16: bool = True               # compute under bf16 autocast, fp32 master weights, where the
                                    # hardware computes in bf16 (native_bf16); fp32 elsewhere
    checkpointing: bool = True      # activation checkpointing per decoder layer
    lora_rank: int = 0              # LoRA's r (LoRAModel): 0 trains every weight (the paper); r > 0 trains
                                    # rank-r adapters of a frozen base, one for the policy, one for the value
    lora_alpha: float = 64.0        # LoRA's alpha: an adapter adds (alpha / r) B A to W


@dataclass
class Sequence:
    """One finished episode, as PPO sees it (the rollout's output).

    `policy_mask[t]` refers to token `ids[t]`; that token's log-prob comes from
    the logits at position t-1 (a prompt always precedes the first policy token).
    Turns are the maximal runs of 1s in `policy_mask`.
    """
    ids: list[int]              # the whole conversation, exactly as the engine saw it
    policy_mask: list[int]      # 1 where the policy sampled the token (end-of-turn included), 0 for env
    rewards: list[float]        # environment reward per token: terminal +-1 on the last policy token,
                                # -0.2 on the last token of a turn without valid code, 0 elsewhere
    behaviour_logp: list[float]  # log-prob the engine sampled each policy token with; 0 on env tokens


# ----------------------------------------------------------------------------
# 1. The formulas. Tensors are [batch, tokens]; `mask` is 1 on policy tokens.
# ----------------------------------------------------------------------------

def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over the positions where mask is 1 (0 if there are none)."""
    mask = mask.bool()
    return torch.where(mask, x, 0).sum() / mask.sum().clamp(min=1)


def approx_kl(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimates of KL(pi || ref) from samples of pi (Schulman's note).

    With log r = ref_logp - logp:  k1 = -log r (unbiased, can be negative),
    k2 = (log r)^2 / 2 (biased, low variance), k3 = (r - 1) - log r (unbiased, >= 0).
    """
    log_ratio = ref_logp - logp
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio ** 2
    if kind == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}: k1, k2 or k3")


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
        gamma: float = 1.0, lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over policy tokens only (GAE Eq. 16; PPO Eqs. 11-12):

        delta_t = r_t + gamma * V(s_next) - V(s_t)
        A_t     = delta_t + gamma * lam * A_next
        R_t     = A_t + V(s_t)

    where "next" is the next *policy* token: walking backwards, an environment
    token (mask 0) leaves A_next and V(s_next) untouched, so the feedback between
    two answers is not a state of its own, and its positions are not value
    estimates. After the last policy token V = 0. Outputs are 0 where mask is 0.
    """
    mask = mask.bool()
    advantages = torch.zeros_like(values)
    next_advantage = torch.zeros_like(values[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        next_advantage = torch.where(mask[:, t], advantage, next_advantage)
        next_value = torch.where(mask[:, t], values[:, t], next_value)
        advantages[:, t] = torch.where(mask[:, t], advantage, 0)
    returns = torch.where(mask, advantages + values, 0)
    return advantages, returns


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, clip_eps: float = 0.2,
                behaviour_logp: torch.Tensor | None = None) -> torch.Tensor:
    """PPO's clipped surrogate (PPO Eq. 7), as a loss, averaged over policy tokens:

        r_t = pi(a_t) / pi_old(a_t)
        L   = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)

    With `behaviour_logp` (RLEF's off-policy correction for asynchronous
    sampling) the ratio becomes r_t * stopgrad(min(pi(a_t) / pi_behaviour(a_t), 1)).
    """
    ratio = torch.exp(logp - old_logp)
    if behaviour_logp is not None:
        ratio = ratio * torch.exp(logp - behaviour_logp).clamp(max=1.0).detach()
    surrogate = torch.minimum(ratio * advantages,
                              ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    return masked_mean(-surrogate, mask)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               mask: torch.Tensor, clip: float = 0.2) -> torch.Tensor:
    """Clipped value loss (as in OpenAI baselines' ppo2), averaged over masked positions:

        L = mean 1/2 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)
    """
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return masked_mean(0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


# ----------------------------------------------------------------------------
# Distributed helpers: sums over all ranks (a no-op on one rank).
# ----------------------------------------------------------------------------

def all_sum(*xs: float | torch.Tensor) -> list[float]:
    """Sum each scalar over all ranks, in one collective."""
    t = torch.tensor([float(x) for x in xs], dtype=torch.float64, device=device())
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


def all_max(x: int | float) -> int | float:
    """The largest x over all ranks (an int stays an int)."""
    t = torch.tensor([x], device=device())
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def moments(x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float, float]:
    """Count, mean and variance of x over masked positions of *all* ranks."""
    x = torch.where(mask, x.double(), 0)
    n, s, s2 = all_sum(mask.sum(), x.sum(), (x * x).sum())
    mean = s / max(n, 1)
    return n, mean, max(s2 / max(n, 1) - mean * mean, 0.0)


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over the policy tokens of the whole batch (all ranks)."""
    _, mean, var = moments(x, mask)
    return torch.where(mask, (x - mean) / math.sqrt(var + 1e-8), 0)


# ----------------------------------------------------------------------------
# 2. The episode table: Sequences -> padded tensors in the action layout.
# ----------------------------------------------------------------------------

def episode_table(sequences: list[Sequence], dev: torch.device) -> dict[str, torch.Tensor]:
    """Right-pad the episodes into [n, T] tensors, T = longest episode - 1.

    Column j is the *action* ids[j+1]: the model reads `inputs[:, j]` (= ids[j])
    and predicts it. So its log-prob comes from position j, and so does the
    value of the state before it. Per turn: `turn_start` marks a turn's first
    token, whose position is the last context token c_t before the answer, and
    `turn` numbers the turns (-1 on environment tokens).
    """
    n, T = len(sequences), max(len(s.ids) for s in sequences) - 1
    ids = torch.zeros(n, T + 1, dtype=torch.long)
    policy = torch.zeros(n, T + 1, dtype=torch.bool)
    env_reward = torch.zeros(n, T + 1)
    behaviour = torch.zeros(n, T + 1)
    for i, s in enumerate(sequences):
        assert len(s.ids) == len(s.policy_mask) == len(s.rewards) == len(s.behaviour_logp)
        assert not s.policy_mask[0], "a prompt precedes the first policy token"
        L = len(s.ids)
        ids[i, :L] = torch.tensor(s.ids)
        policy[i, :L] = torch.tensor(s.policy_mask, dtype=torch.bool)
        env_reward[i, :L] = torch.tensor(s.rewards, dtype=torch.float32)
        behaviour[i, :L] = torch.tensor(s.behaviour_logp, dtype=torch.float32)
    lengths = torch.tensor([len(s.ids) for s in sequences])
    policy = policy[:, 1:]
    turn_start = policy & ~torch.nn.functional.pad(policy[:, :-1], (1, 0))
    table = dict(
        inputs=ids[:, :-1], actions=ids[:, 1:], lengths=lengths,
        attention=torch.arange(T)[None, :] < (lengths[:, None] - 1),
        policy=policy, turn_start=turn_start,
        turn=torch.where(policy, turn_start.cumsum(1) - 1, -1),
        env_reward=env_reward[:, 1:], behaviour_logp=behaviour[:, 1:])
    return {k: v.to(dev) for k, v in table.items()}


def microbatches(rows: list[int], lengths: torch.Tensor, budget: int) -> list[list[int]]:
    """Length bucketing: sort the rows by length and cut them greedily into
    microbatches whose padded size (rows x longest) stays within `budget` tokens,
    so similar lengths share a batch and padding stays small."""
    rows = sorted(rows, key=lambda r: -int(lengths[r]))
    plan, current = [], []
    for r in rows:
        if current and (len(current) + 1) * int(lengths[current[0]]) > budget:
            plan.append(current)
            current = []
        current.append(r)
    return plan + [current] if current else plan


def padded_plan(plan: list[list[int]]) -> list[list[int]]:
    """FSDP2's collectives need every rank to run the same number of forwards:
    ranks with fewer microbatches add empty ones (a dummy forward, weight 0)."""
    return plan + [[] for _ in range(all_max(len(plan)) - len(plan))]


def rows_of(table: dict, rows: list[int], dev: torch.device) -> dict[str, torch.Tensor]:
    """The microbatch `rows`, cut to its longest episode. An empty microbatch is
    a one-token dummy whose only position counts as a policy and value position."""
    if not rows:
        one = torch.ones(1, 1, dtype=torch.bool, device=dev)
        return dict(inputs=torch.zeros(1, 1, dtype=torch.long, device=dev), attention=one,
                    policy=one, value_at=one, actions=torch.zeros(1, 1, dtype=torch.long, device=dev))
    index = torch.tensor(rows, device=dev)
    width = int(table["lengths"][index].max()) - 1
    return {k: v[index, :width] for k, v in table.items() if v.dim() == 2}


# ----------------------------------------------------------------------------
# 3. Rewards and advantages, in the action layout.
# ----------------------------------------------------------------------------

def count_turns(turn: torch.Tensor) -> int:
    return max(int(turn.max()) + 1, 1)     # (at least 1: a batch may hold no answer at all)


def per_turn(x: torch.Tensor, turn: torch.Tensor, num_turns: int) -> torch.Tensor:
    """Sum x over each turn's tokens: [n, T] -> [n, num_turns]."""
    out = torch.zeros(x.shape[0], num_turns, dtype=x.dtype, device=x.device)
    return out.scatter_add_(1, turn.clamp(min=0), torch.where(turn >= 0, x, 0))


def rewards_with_kl(env_reward: torch.Tensor, kl: torch.Tensor, turn: torch.Tensor,
                    beta: float, turn_mean: bool) -> torch.Tensor:
    """RLEF's reward on each policy token: the environment's (terminal +-1,
    -0.2 for a turn without code) minus beta * KL_t to the initial policy;
    with `turn_mean` the penalty is divided by the turn's length, so a turn pays
    beta times its *mean* log-ratio (RLEF's per-response KL, no bias toward
    short answers)."""
    penalty = beta * kl
    if turn_mean:
        lengths = per_turn(torch.ones_like(kl), turn, count_turns(turn))
        penalty = penalty / lengths.gather(1, turn.clamp(min=0))
    return torch.where(turn >= 0, env_reward - penalty, 0)


def turn_advantages(rewards: torch.Tensor, values: torch.Tensor, turn: torch.Tensor,
                    turn_start: torch.Tensor, gamma: float, lam: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """RLEF's per-turn advantage: every token of turn t gets

        A_t = (sum of rewards from turn t on) - V(c_t)

    with V(c_t) the value at the turn's first position. It is GAE at the level
    of turns (with gamma = lam = 1 exactly the formula above), so gamma and lam
    discount per turn. Returns R_t = A_t + V(c_t) sit at the turn starts."""
    num_turns = count_turns(turn)
    turn_rewards = per_turn(rewards, turn, num_turns)
    turn_values = per_turn(torch.where(turn_start, values, 0), turn, num_turns)
    is_turn = torch.arange(num_turns, device=turn.device)[None, :] < (turn.max(1).values[:, None] + 1)
    adv, ret = gae(turn_rewards, turn_values, is_turn, gamma, lam)
    index = turn.clamp(min=0)
    return (torch.where(turn >= 0, adv.gather(1, index), 0),
            torch.where(turn_start, ret.gather(1, index), 0))


# ----------------------------------------------------------------------------
# 4. Models, FSDP2, optimizer.
# ----------------------------------------------------------------------------

class CausalLM(nn.Module):
    """The policy (and the frozen reference): the checkpoint's decoder `model`
    and `lm_head`, so parameter names are the checkpoint's. The head runs only
    where asked (policy tokens): prompts and feedback need no logits. Logits
    are divided by the sampling temperature: the policy is what the engine
    samples from, softmax(z / T)."""

    def __init__(self, lm: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.model, self.lm_head = lm.model, lm.lm_head   # shared Parameter if tied
        self.temperature = temperature

    def forward(self, inputs, attention, where):
        hidden = self.model(input_ids=inputs, attention_mask=attention, use_cache=False).last_hidden_state
        return self.lm_head(hidden[where]).float() / self.temperature


class ValueModel(nn.Module):
    """RLEF's value function: the same LLM with its output layer replaced by a
    fresh linear head (zero-initialised: every value starts at 0)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.model = backbone
        self.value_head = self.zero_head(backbone.config.hidden_size)

    def forward(self, inputs, attention, where):
        hidden = self.model(input_ids=inputs, attention_mask=attention, use_cache=False).last_hidden_state
        return self.values(self.value_head, hidden[where])

    @staticmethod
    def zero_head(hidden_size: int) -> nn.Linear:
        head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        return head

    @staticmethod
    def values(head: nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
        """The scalar head in fp32, outside autocast."""
        with torch.autocast(hidden.device.type, enabled=False):
            return head(hidden.float()).flatten().clone()  # FSDP2 wants no views


class LoRALinear(nn.Module):
    """A frozen linear layer with low-rank adapters (Hu et al. 2021, "LoRA", Eq. 3):

        h = W x + (alpha / r) B A x,    A: r x in (random),  B: out x r (zeros)

    B starts at zero, so an adapter starts as no change at all: h = W x exactly.
    Several adapters share the one W (here "policy" and "value"); `adapter`
    names the one in use, None for none. W and its bias keep the layer's
    parameter names (`...q_proj.weight`): the checkpoint's, which the engine
    loads. The adapter in use is a setting, not an argument (the decoder
    between us and the caller passes none), so a backward, which recomputes
    checkpointed layers, must come before the next forward with another
    adapter: `update` runs each forward's backward at once."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float, adapters: tuple[str, ...], name: str):
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self.scale = alpha / rank
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        for adapter in adapters:
            A = torch.empty(rank, linear.in_features)   # initialised as peft does (nn.Linear's own init)
            seed = torch.Generator().manual_seed(zlib.crc32(f"{name}.{adapter}".encode()))
            nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=seed)
            self.lora_A[adapter] = nn.Parameter(A)
            self.lora_B[adapter] = nn.Parameter(torch.zeros(linear.out_features, rank))
        self.adapter: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.linear(x, self.weight, self.bias)
        if self.adapter is None:
            return h
        A, B = self.lora_A[self.adapter], self.lora_B[self.adapter]
        return h + self.scale * nn.functional.linear(nn.functional.linear(x, A), B)

    @torch.no_grad()
    def merged(self, adapter: str) -> torch.Tensor:
        """W + (alpha / r) B A, the weight the engine samples with, computed in
        fp32 from the untouched W (full tensors: a collective under FSDP2).
        Nothing is merged into W in place: merging and unmerging in bf16 drifts."""
        W, A, B = (full(p).float() for p in (self.weight, self.lora_A[adapter], self.lora_B[adapter]))
        return W + self.scale * (B @ A)


class LoRAModel(nn.Module):
    """RLEF's three models on one frozen base, with LoRA (`lora_rank` > 0):

        policy      pi(a|s)  = base + policy adapter, lm_head
        reference   pi_ref   = base with the adapters off: the initial policy, exactly
        value       V(s)     = base + value adapter, value_head (zero-initialised)

    Every linear layer of the decoder blocks gets both adapters. Only the
    adapters and the value head are trained, so only they have gradients and
    optimizer state, and the base is kept in the precision it computes in.
    `forward(..., role)` runs one of the three; `Role` presents each as a model
    of its own (what `update` calls)."""

    ADAPTER = {"policy": "policy", "reference": None, "value": "value"}

    def __init__(self, lm: nn.Module, rank: int, alpha: float, temperature: float):
        super().__init__()
        lm.requires_grad_(False)
        self.model, self.lm_head = lm.model, lm.lm_head
        for name, module in list(self.model.layers.named_modules(prefix="model.layers")):
            for child, linear in list(module.named_children()):
                if isinstance(linear, nn.Linear):
                    setattr(module, child, LoRALinear(linear, rank, alpha, ("policy", "value"), f"{name}.{child}"))
        self._adapted = [(name, m) for name, m in self.named_modules() if isinstance(m, LoRALinear)]
        self.value_head = ValueModel.zero_head(lm.config.hidden_size)
        self.temperature = temperature

    def adapted(self) -> list[tuple[str, LoRALinear]]:
        """(name, layer) of every LoRALinear (found once: forward sets them all)."""
        return self._adapted

    def forward(self, inputs, attention, where, role: str):
        for _, m in self._adapted:
            m.adapter = self.ADAPTER[role]
        hidden = self.model(input_ids=inputs, attention_mask=attention, use_cache=False).last_hidden_state
        if role == "value":
            return ValueModel.values(self.value_head, hidden[where])
        return self.lm_head(hidden[where]).float() / self.temperature   # as CausalLM


class Role:
    """One of a LoRAModel's three models, called as CausalLM or ValueModel are;
    its parameters are the ones it trains (its adapter; the value head)."""

    def __init__(self, shared: LoRAModel, role: str):
        self.shared, self.role = shared, role
        self.temperature = shared.temperature

    def __call__(self, inputs, attention, where):
        return self.shared(inputs, attention, where, self.role)

    def named_parameters(self):
        adapter = LoRAModel.ADAPTER[self.role]
        for name, p in self.shared.named_parameters():
            if name.endswith(f".{adapter}") and ".lora_" in name or (self.role == "value" and name.startswith("value_head.")):
                yield name, p

    def parameters(self):
        return [p for _, p in self.named_parameters()]


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def keep_freed_memory() -> None:
    """On CPU, make glibc's malloc keep freed memory for the next tensor rather
    than give it back to the OS at once (a no-op elsewhere).

    PyTorch has no caching allocator on CPU: every tensor is a malloc, every
    free a free. glibc serves blocks above its mmap threshold (adaptive, at
    most 32 MB; rlef had pinned it at 1 MB against fragmentation) with a
    mapping of their own and unmaps them when freed, so the next tensor of the
    kind faults its memory in again, 4 KB at a time, zeroed by the kernel. A
    PPO update allocates gigabytes of activations and full-vocabulary logits
    that way: at 1 MB, 13 million page faults and 30 of its 100 CPU-seconds
    in the kernel per update (bench/ppo.py). With the threshold at 1 GB and
    the heap's top never trimmed, freed blocks stay in the heap and are
    reused: no faults once the heap has grown to the update's peak. (A trim
    threshold of 1 GB, as until 2026-12-03, still handed the top back
    mid-update whenever more than 1 GB lay free there: 0.35 million faults,
    3 CPU-seconds in the kernel.) rlef's loop hands the heap back once per
    step instead (rlef.release_memory)."""
    import ctypes
    if device().type != "cpu":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:   # not glibc (macOS, musl): its own allocator policy
        return
    libc.mallopt(-3, 1 << 30)   # M_MMAP_THRESHOLD: only blocks of 1 GB or more get their own mapping
    libc.mallopt(-1, -1)        # M_TRIM_THRESHOLD -1: never trim the heap by itself (rlef.release_memory does, once per step)


def torchrun_env() -> None:
    """Under a plain `python`, the variables torchrun sets, for one rank: RANK,
    LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (a free port). Then
    torch.distributed and vLLM's external launcher (rlef.vllm_args) take the
    same path with or without torchrun."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def init_distributed():
    """Join torchrun's process group (nccl on GPUs, gloo on CPU), or make a
    1-rank one under a plain `python`; return the 1-D device mesh FSDP2 shards
    over. nccl is bound to this rank's GPU (`device_id`): it then neither
    guesses the device from the global rank nor warns at every barrier."""
    dev = device()
    if not dist.is_initialized():
        torchrun_env()
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
            dist.init_process_group("nccl", device_id=dev)
        else:
            dist.init_process_group("gloo")
    return init_device_mesh(dev.type, (dist.get_world_size(),))


def shard(model: nn.Module, mesh) -> nn.Module:
    """FSDP2: each decoder layer is one unit (all-gathered just before it runs,
    freed after), the rest (embeddings, final norm, heads) is the root unit.
    Gradients are *summed* over ranks, not averaged: `update` already divides
    the loss by the global number of tokens. On one rank there is nothing to
    shard (it would only add copies): the model just moves to the device."""
    if mesh.size() == 1:
        return model.to(device())
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=True)
    fully_shard(model, mesh=mesh, reshard_after_forward=True)
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)   # plain SUM: gloo has no PREMUL_SUM
    return model


@dataclass
class Learner:
    """Everything `update` changes, and what a checkpoint saves."""
    policy: CausalLM | Role
    reference: CausalLM | Role
    value: ValueModel | Role
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    config: PPOConfig
    beta: float
    step: int = 0          # optimizer steps so far

    @property
    def trained(self) -> nn.Module:
        """The module that holds what is trained (a checkpoint saves its trained part)."""
        if isinstance(self.policy, Role):
            return self.policy.shared
        return nn.ModuleDict({"policy": self.policy, "value": self.value})


def build(model_path: str, config: PPOConfig = PPOConfig()) -> Learner:
    """Policy, frozen reference (the initial policy) and value model from one
    checkpoint folder, FSDP2-sharded; AdamW with one parameter group per model
    (own learning rate) and linear warm-up.

    Full fine-tuning (`lora_rank` 0): three models, fp32 master weights.
    LoRA: one LoRAModel, its frozen base in bf16 where the update computes in
    bf16 (else fp32), its adapters and value head in fp32."""
    from transformers import AutoModel, AutoModelForCausalLM
    mesh = init_distributed()
    keep_freed_memory()
    load = dict(dtype=torch.float32)
    t = config.temperature
    if config.lora_rank:
        base = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.bfloat16 if computes_in_bf16(config) else torch.float32)
        shared = LoRAModel(base, config.lora_rank, config.lora_alpha, t)
        policy, reference, value = (Role(shared, role) for role in ("policy", "reference", "value"))
        checkpointed, sharded = [shared], [shared]
    else:
        policy = CausalLM(AutoModelForCausalLM.from_pretrained(model_path, **load), t)
        reference = CausalLM(AutoModelForCausalLM.from_pretrained(model_path, **load), t).eval().requires_grad_(False)
        value = ValueModel(AutoModel.from_pretrained(model_path, **load))
        checkpointed, sharded = [policy, value], [policy, reference, value]
    if config.checkpointing:
        for m in checkpointed:
            m.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for m in sharded:
        shard(m, mesh)
    optimizer = torch.optim.AdamW([{"params": policy.parameters(), "lr": config.lr},
                                   {"params": value.parameters(), "lr": config.value_lr}],
                                  weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    return Learner(policy, reference, value, optimizer, scheduler, config, config.beta)


def full(param: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a parameter (an FSDP2 shard is gathered: a collective)."""
    return (param.full_tensor() if isinstance(param, DTensor) else param).detach()


def iter_full_params(model: nn.Module):
    """Yield (name, full tensor) one parameter at a time, names as in the HF
    checkpoint (what vLLM's `load_weights` expects), so peak extra memory is one
    tensor. A collective: every rank must iterate, in step."""
    for name, param in model.named_parameters():
        yield name, full(param)


def policy_weights(learner: Learner):
    """The policy's weights as the checkpoint names them, one full tensor at a
    time: what the engine loads and what a policy folder holds. With LoRA, W +
    (alpha / r) B A of the policy adapter where a layer has one, the frozen base
    elsewhere. A collective."""
    if not isinstance(learner.policy, Role):
        yield from iter_full_params(learner.policy)
        return
    shared = learner.policy.shared
    adapted = {f"{name}.weight": m for name, m in shared.adapted()}
    for name, param in shared.named_parameters():
        if name in adapted:
            yield name, adapted[name].merged("policy")
        elif not param.requires_grad:   # the base (the trained ones are the adapters and the value head)
            yield name, full(param)


def save_adapter(learner: Learner, folder: str, base_model: str) -> None:
    """The policy adapter in peft's file format (adapter_config.json,
    adapter_model.safetensors), which `PeftModel.from_pretrained(base, folder)`
    and vLLM's LoRA loading (a LoRARequest) take: tests/test_lora.py and
    tests/test_engines.py. A collective; rank 0 writes."""
    import json
    from safetensors.torch import save_file
    shared, cfg = learner.policy.shared, learner.config
    tensors, targets = {}, set()
    for name, m in shared.adapted():
        for part in ("lora_A", "lora_B"):
            tensors[f"base_model.model.{name}.{part}.weight"] = full(getattr(m, part)["policy"]).cpu().contiguous()
        targets.add(name.rsplit(".", 1)[1])
    if not dist.is_initialized() or dist.get_rank() == 0:
        os.makedirs(folder, exist_ok=True)
        save_file(tensors, os.path.join(folder, "adapter_model.safetensors"), metadata={"format": "pt"})
        config = dict(peft_type="LORA", task_type="CAUSAL_LM", base_model_name_or_path=base_model,
                      r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=sorted(targets), fan_in_fan_out=False, inference_mode=True,
                      use_rslora=False, modules_to_save=None)
        with open(os.path.join(folder, "adapter_config.json"), "w") as f:
            json.dump(config, f, indent=1)


# perturb's noise in LoRA's B. With SmolLM2 (rank 16, alpha 32) rms 0.05 moves the
# trainer's log-probs by 0.56 per token (full fine-tuning's change: 0.36); at 0.02 a
# bf16 sync that left out every second tensor came out 0.17 from the trainer, too
# near rlef.SYNC_TOLERANCE's 0.15, at 0.05 0.30 (docs/training.md).
LORA_B_NOISE = 0.05


@torch.no_grad()
def perturb(model: nn.Module, scale: float = 0.02) -> list[torch.Tensor]:
    """For the start-up check of the weight sync (rlef.check_sync): change every
    trained tensor slightly and deterministically, W += scale * rms(W) * noise,
    the noise N(0, 1) from a generator seeded by the tensor's name (and the
    rank: each changes its own FSDP2 shard). Every tensor moves, so one that
    the sync leaves out shows. LoRA's B (zero before training, small after)
    gets noise of rms LORA_B_NOISE instead: then every merged W + (alpha / r)
    B A moves, as much after training as before. Returns the originals (on
    the CPU): `restore` puts them back exactly."""
    originals = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            local = p.to_local() if isinstance(p, DTensor) else p
            originals.append(local.to("cpu", copy=True))
            seed = zlib.crc32(f"{name}@{dist.get_rank() if dist.is_initialized() else 0}".encode())
            noise = torch.randn(local.shape, generator=torch.Generator(local.device).manual_seed(seed),
                                device=local.device, dtype=local.dtype)
            if ".lora_B." in name:   # zero at the start, small later: noise of a fixed size
                local.add_(LORA_B_NOISE * noise)
            else:
                local.add_(scale * local.square().mean().sqrt() * noise)
    return originals


@torch.no_grad()
def restore(model: nn.Module, originals: list[torch.Tensor]) -> None:
    """Undo `perturb`, bit for bit."""
    for p, original in zip((p for p in model.parameters() if p.requires_grad), originals, strict=True):
        (p.to_local() if isinstance(p, DTensor) else p).copy_(original)


@torch.no_grad()
def sequence_logp(learner: Learner, ids: list[int]) -> torch.Tensor:
    """log pi(ids[j+1] | ids[..j]) for every j under the policy, computed as the
    update computes it (autocast), at temperature 1: what an engine's scoring
    of `ids` returns (vLLM's prompt log-probs skip its sampler). A collective."""
    inputs = torch.tensor([ids[:-1]], device=device())
    with bf16_autocast(learner.config):
        logits = learner.policy(inputs, torch.ones_like(inputs), torch.ones_like(inputs, dtype=torch.bool))
    logits = logits * learner.policy.temperature   # the policy divides by T: back to T = 1
    return -F.cross_entropy(logits, torch.tensor(ids[1:], device=device()), reduction="none").cpu()


# The trained parameters only: a frozen base is loaded from the model, not saved
# (strict=False lets a load leave it out; dcp.load checks that what is asked for is there).
TRAINED = StateDictOptions(ignore_frozen_params=True, strict=False)


def trained_state(learner: Learner) -> tuple[dict, dict]:
    """The state dicts of what is trained and of the optimizer. The frozen base
    is left out: it comes from the model. (`ignore_frozen_params` misses a
    frozen tied LM head, which state_dict lists under its second name.)"""
    model_state, optim_state = get_state_dict(learner.trained, learner.optimizer, options=TRAINED)
    frozen = {n for n, p in learner.trained.named_parameters(remove_duplicate=False) if not p.requires_grad}
    return {k: v for k, v in model_state.items() if k not in frozen}, optim_state


def save_checkpoint(learner: Learner, folder: str) -> None:
    """Sharded checkpoint (torch.distributed.checkpoint) of what is trained
    (both models; with LoRA the adapters and the value head, not the frozen
    base), the optimizer, and the scheduler/beta/step. Every rank calls it."""
    model_state, optim_state = trained_state(learner)
    dcp.save({"model": model_state, "optim": optim_state,
              "scheduler": learner.scheduler.state_dict(),
              "beta": learner.beta, "step": learner.step}, checkpoint_id=folder)


def load_checkpoint(learner: Learner, folder: str) -> None:
    model_state, optim_state = trained_state(learner)
    state = {"model": model_state, "optim": optim_state,
             "scheduler": learner.scheduler.state_dict(), "beta": learner.beta, "step": learner.step}
    dcp.load(state, checkpoint_id=folder)   # fails on a key the checkpoint lacks (TRAINED)
    set_state_dict(learner.trained, learner.optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optim"], options=TRAINED)
    learner.scheduler.load_state_dict(state["scheduler"])
    learner.beta, learner.step = state["beta"], state["step"]


# ----------------------------------------------------------------------------
# 5. The update.
# ----------------------------------------------------------------------------

@functools.cache
def native_bf16() -> bool:
    """Whether this machine computes in bf16 natively: a CUDA GPU that supports it
    (Ampere and later), a CPU with AVX512-BF16 or AMX (Linux: the flags of
    /proc/cpuinfo). Elsewhere bf16 is emulated and slow: on an AVX2-only AMD EPYC a
    512 x 512 bf16 matmul took 229 ms against 4.7 ms in fp32, and a PPO update of
    the smoke run went 100 times slower than in fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def computes_in_bf16(cfg: PPOConfig) -> bool:
    """--bf16 asks for it, and the hardware computes in bf16 natively."""
    return cfg.bf16 and native_bf16()


def bf16_autocast(cfg: PPOConfig):
    """Compute in bf16, keep fp32 master weights (where bf16 is native; fp32
    otherwise). No cache of cast weights: under FSDP2 it would keep a bf16 copy
    of every all-gathered layer alive until the whole forward ends."""
    return torch.autocast(device().type, dtype=torch.bfloat16, enabled=computes_in_bf16(cfg), cache_enabled=False)


def token_logp(model: CausalLM, mb: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a_j) = log softmax(z_j)[a_j] at the policy positions of a
    microbatch, and the logits z. Computed as minus the cross-entropy: one fused
    kernel forward and backward, where gather - logsumexp is half a dozen passes
    over the full vocabulary (bench/ppo.py: a 512 x 49152 head, 468 against 676 ms)."""
    logits = model(mb["inputs"], mb["attention"], mb["policy"])
    actions = mb["actions"][mb["policy"]]
    return -F.cross_entropy(logits, actions, reduction="none"), logits


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H = -sum_a p(a) log p(a), per row."""
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def experience(learner: Learner, table: dict, plan: list[list[int]], dev: torch.device) -> None:
    """Before any step: log-probs of the current policy (pi_old) and of the
    reference, and the values V_old, written into the table."""
    autocast = bf16_autocast(learner.config)
    for key in ("old_logp", "ref_logp", "old_values"):
        table[key] = torch.zeros(table["policy"].shape, device=dev)
    for rows in plan:
        mb = rows_of(table, rows, dev)
        with autocast:
            old, _ = token_logp(learner.policy, mb)
            ref, _ = token_logp(learner.reference, mb)
            values = learner.value(mb["inputs"], mb["attention"], mb["value_at"])
        if rows:
            index = torch.tensor(rows, device=dev)[:, None]
            column = torch.arange(mb["policy"].shape[1], device=dev)[None, :]
            for key, where, x in (("old_logp", "policy", old), ("ref_logp", "policy", ref),
                                  ("old_values", "value_at", values)):
                full = torch.zeros(mb[where].shape, device=dev)
                full[mb[where]] = x.float()
                table[key][index, column] = full


def clip_grad_norm(model: nn.Module, max_norm: float) -> float:
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)


def update(learner: Learner, sequences: list[Sequence], progress=lambda text: None) -> dict[str, float]:
    """One PPO update on a batch of finished episodes (RLEF: 1024 episodes,
    4 optimizer steps of 256). Every rank passes its own share.

    1. Experience: pi_old, reference and value on every episode (no grad).
    2. Rewards r_t = env_t - beta * KL_t; advantages (per turn or per token GAE),
       whitened over the whole batch.
    3. The episodes, in the given order, are cut into `minibatches` contiguous
       chunks (the caller shuffles); each chunk is one optimizer step, its loss
       accumulated over length-bucketed microbatches. Each microbatch loss is a
       *sum* over its tokens divided by the number of policy tokens (value
       positions) in the chunk over *all ranks*, and FSDP2 sums gradients over
       ranks: so the gradient is the mean over the global minibatch, however the
       episodes are split among ranks and microbatches.
    `progress(text)` hears which phase runs (rlef's status line shows it).
    """
    cfg, dev, start = learner.config, device(), time.perf_counter()
    table = episode_table(sequences, dev)
    table["value_at"] = table["turn_start"] if cfg.value_per_turn else table["policy"]
    policy, value_at = table["policy"], table["value_at"]
    autocast = bf16_autocast(cfg)
    n = len(sequences)

    # 1. experience
    progress("PPO update: pi_old, reference and values of every episode")
    experience(learner, table, padded_plan(microbatches(list(range(n)), table["lengths"], cfg.micro_tokens)), dev)
    experience_s = time.perf_counter() - start
    # the engine's log-probs against the trainer's, of the same weights: |log pi_engine - log pi_old|
    # per policy token, ~0.015 in bf16 when the sync works (rlef warns when it jumps)
    gap = torch.where(policy, (table["old_logp"] - table["behaviour_logp"]).abs(), 0)
    gap_sum, gap_tokens = all_sum(gap.sum(), policy.sum())
    engine_gap = dict(engine_logp_diff_mean=gap_sum / max(gap_tokens, 1), engine_logp_diff_max=all_max(float(gap.max())))

    # 2. rewards and advantages
    kl = torch.where(policy, approx_kl(table["old_logp"], table["ref_logp"], cfg.kl_estimator), 0)
    rewards = rewards_with_kl(table["env_reward"], kl, table["turn"], learner.beta, cfg.kl_turn_mean)
    if cfg.value_per_turn:
        advantages, returns = turn_advantages(rewards, table["old_values"], table["turn"],
                                              table["turn_start"], cfg.gamma, cfg.lam)
    else:
        advantages, returns = gae(rewards, table["old_values"], policy, cfg.gamma, cfg.lam)
    table["advantages"], table["returns"] = whiten(advantages, policy), returns

    # 3. K optimizer steps
    sums = dict.fromkeys(("policy_loss", "value_loss", "clip_frac", "approx_kl_old", "entropy"), 0.0)
    grad_norms = {"policy": [], "value": []}
    chunks = [list(range(n))[k * n // cfg.minibatches:(k + 1) * n // cfg.minibatches]
              for k in range(cfg.minibatches)]
    for k, rows in enumerate(chunks):
        progress(f"PPO update: minibatch {k + 1} of {len(chunks)}")
        n_policy, n_value = all_sum(policy[rows].sum(), value_at[rows].sum())
        for mb_rows in padded_plan(microbatches(rows, table["lengths"], cfg.micro_tokens)):
            mb = rows_of(table, mb_rows, dev)
            weight = 1.0 if mb_rows else 0.0       # 0: a dummy microbatch (see padded_plan)
            # policy: forward, loss, backward (then its activations are freed)
            with autocast:
                logp, logits = token_logp(learner.policy, mb)
            old_logp, adv, behaviour = (mb[k][mb["policy"]] if mb_rows else torch.zeros_like(logp)
                                        for k in ("old_logp", "advantages", "behaviour_logp"))
            pl = policy_loss(logp, old_logp, adv, torch.ones_like(logp), cfg.clip_eps,
                             behaviour if cfg.off_policy_correction else None)
            # the mean over this microbatch -> its sum / policy tokens of the global minibatch
            (weight * pl * len(logp) / max(n_policy, 1)).backward()
            # value: the same, at the value positions
            with autocast:
                values = learner.value(mb["inputs"], mb["attention"], mb["value_at"])
            old_values, targets = (mb[k][mb["value_at"]] if mb_rows else torch.zeros_like(values)
                                   for k in ("old_values", "returns"))
            vl = value_loss(values, old_values, targets, torch.ones_like(values), cfg.value_clip)
            (weight * vl * len(values) / max(n_value, 1)).backward()
            with torch.no_grad():
                ratio = torch.exp(logp - old_logp)
                sums["policy_loss"] += weight * float(pl) * len(logp)
                sums["value_loss"] += weight * float(vl) * len(values)
                sums["clip_frac"] += weight * float(((ratio - 1).abs() > cfg.clip_eps).sum())
                sums["approx_kl_old"] += weight * float(approx_kl(old_logp, logp, "k3").sum())
                sums["entropy"] += weight * float(entropy(logits).sum())
        grad_norms["policy"].append(clip_grad_norm(learner.policy, cfg.max_grad_norm))
        grad_norms["value"].append(clip_grad_norm(learner.value, cfg.max_grad_norm))
        learner.optimizer.step()
        learner.scheduler.step()
        learner.optimizer.zero_grad(set_to_none=True)
        learner.step += 1

    # 4. statistics over all ranks, and the adaptive KL coefficient
    tokens_policy, tokens_value, tokens, episodes, *totals = all_sum(
        policy.sum(), value_at.sum(), table["lengths"].sum(), n, *sums.values(),
        kl.sum(), table["env_reward"].sum(), (rewards - torch.where(policy, table["env_reward"], 0)).sum())
    *loss_sums, kl_sum, env_sum, penalty_sum = totals
    stats = {k: s / max(tokens_policy if k != "value_loss" else tokens_value, 1)
             for k, s in zip(sums, loss_sums)}
    _, _, var_returns = moments(returns, value_at)
    _, _, var_residual = moments(returns - table["old_values"], value_at)
    stats.update(
        kl_ref=kl_sum / max(tokens_policy, 1), beta=learner.beta,
        env_return=env_sum / max(episodes, 1), kl_penalty=penalty_sum / max(episodes, 1),
        value_explained_var=1 - var_residual / var_returns if var_returns > 0 else 0.0,
        grad_norm_policy=sum(grad_norms["policy"]) / len(chunks),
        grad_norm_value=sum(grad_norms["value"]) / len(chunks),
        lr=learner.scheduler.get_last_lr()[0], tokens=tokens, policy_tokens=tokens_policy,
        experience_s=experience_s, update_s=time.perf_counter() - start,
        tokens_per_s=tokens / (time.perf_counter() - start), **engine_gap)
    if cfg.kl_target is not None:   # Ziegler et al. 2019, Eq. 2
        error = max(-0.2, min(0.2, stats["kl_ref"] / cfg.kl_target - 1))
        learner.beta *= 1 + error * episodes / cfg.kl_horizon
    return stats
