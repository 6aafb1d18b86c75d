"""The multi-turn rollout: token bookkeeping, turn logic, and the real engines."""
import random

import pytest
import torch

import data
import rlef
from data import Problem
from rlef import Completion, Config
from sandbox import Sandbox, Test

# A Llama 3.1 Instruct style chat template (system header with dates, trimmed
# contents, <|eot_id|> after every message), the other template family we support.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- set date_string = date_string | default('26 Jul 2024') %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


@pytest.fixture(scope="module")
def smol_tokenizer(smollm2):
    return data.load_tokenizer(smollm2)


# Llama 3's pre-tokenizer: runs of newlines are one piece whatever follows them
# (GPT-2's splits "\n\nLet" differently from a final "\n\n").
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@pytest.fixture(scope="module")
def llama3_tokenizer(smollm2):
    """SmolLM2's vocabulary with Llama 3's special tokens, pre-tokenizer and template."""
    from tokenizers import Regex, pre_tokenizers
    tok = data.load_tokenizer(smollm2)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.add_special_tokens({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                            "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"]})
    tok.chat_template = LLAMA3_TEMPLATE
    return tok


ANSWERS = ["Let me try.\n```python\na, b = map(int, input().split())\nprint(a - b)\n```",
           "Oops, a sum:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```"]


def play_by_hand(tok, answers, feedbacks):
    """Build an episode's ids the way the rollout does, from answer texts."""
    problem = Problem("p", "Print a + b.", [Test(input="1 2\n", output="3\n")], [Test(input="2 2\n", output="4\n")])
    ep = rlef.start_episode(tok, problem)
    for i, answer in enumerate(answers):
        ids = tok.encode(answer, add_special_tokens=False) + [tok.eos_token_id]
        rlef.add_answer(tok, ep, Completion(ids, [0.0] * len(ids), finished=True))
        if i < len(feedbacks):
            rlef.add_feedback(tok, ep, feedbacks[i], answer_finished=True, restart=False)
    return ep


@pytest.mark.parametrize("which", ["smol_tokenizer", "llama3_tokenizer"])
def test_no_drift_between_concatenated_ids_and_a_fresh_rendering(which, request):
    tok = request.getfixturevalue(which)
    feedback = data.feedback_message(["- input '1 2\n' failed: Expected output '3' but got '-1'"])
    ep = play_by_hand(tok, ANSWERS[:1], [feedback])
    # the turn-2 prompt the engine sees is exactly a fresh rendering of the conversation
    assert ep.ids == rlef.render(tok, ep.messages)
    ep = play_by_hand(tok, ANSWERS, [feedback])
    fresh = tok.apply_chat_template(ep.messages, tokenize=True, return_dict=True)["input_ids"]
    assert fresh[:len(ep.ids)] == ep.ids
    # policy tokens are exactly the two answers with their end-of-turn tokens
    runs = [i for i, m in enumerate(ep.policy_mask) if m]
    answer_ids = [ep.ids[i] for i in runs]
    expected = sum((tok.encode(a, add_special_tokens=False) + [tok.eos_token_id] for a in ANSWERS), [])
    assert answer_ids == expected
    assert ep.turn_ends == [i for i in runs if ep.ids[i] == tok.eos_token_id]


def test_sampled_ids_are_kept_even_when_the_template_would_trim_them(llama3_tokenizer):
    tok = llama3_tokenizer
    ep = play_by_hand(tok, ["\n" + ANSWERS[0] + "\n\n"], ["Try again."])
    sampled = tok.encode("\n" + ANSWERS[0] + "\n\n", add_special_tokens=False) + [tok.eos_token_id]
    start = ep.policy_mask.index(1)
    assert ep.ids[start:start + len(sampled)] == sampled
    assert tok.decode(ep.ids[start + len(sampled):]).startswith("<|start_header_id|>user")


def test_an_answer_cut_by_the_limit_gets_its_end_of_turn_from_the_environment(smol_tokenizer):
    tok = smol_tokenizer
    problem = Problem("p", "x", [Test(input="", output="1")], [Test(input="", output="1")])
    ep = rlef.start_episode(tok, problem)
    ids = tok.encode("```python\nprint(", add_special_tokens=False)
    rlef.add_answer(tok, ep, Completion(ids, [-1.0] * len(ids), finished=False))
    rlef.add_feedback(tok, ep, "again", answer_finished=False, restart=False)
    env = ep.ids[ep.turn_ends[-1] + 1:]
    assert env[0] == tok.eos_token_id and ep.policy_mask[ep.turn_ends[-1] + 1] == 0
    assert ep.turns[-1].cut and ep.turns[-1].code is None


def test_stop_length_ends_an_answer_at_the_token_that_completes_the_stop_text(smol_tokenizer):
    tok = smol_tokenizer
    head = tok.encode("Sure!\n```python\nprint(1)\n```", add_special_tokens=False)
    tail = tok.encode("\n\nThis prints 1.", add_special_tokens=False)
    n = rlef.stop_length(tok, head + tail, "\n```\n")
    assert n is not None and len(head) < n <= len(head) + 2   # the newline after the fence
    assert "\n```\n" in tok.decode(head + tail[:n - len(head)])
    assert "\n```\n" not in tok.decode((head + tail)[:n - 1])
    # the opening fence of a tagged block does not stop it; no stop text: no stop
    assert rlef.stop_length(tok, head, "\n```\n") is None
    assert rlef.stop_length(tok, head + tail, "") is None


def test_an_answer_ended_by_the_stop_text_is_not_cut_and_gets_its_end_of_turn(smol_tokenizer):
    tok = smol_tokenizer
    problem = Problem("p", "x", [Test(input="", output="1")], [Test(input="", output="1")])
    ep = rlef.start_episode(tok, problem)
    ids = tok.encode("```python\nprint(1)\n```\n", add_special_tokens=False)
    rlef.add_answer(tok, ep, Completion(ids, [-1.0] * len(ids), finished=False, stopped=True))
    rlef.add_feedback(tok, ep, "again", answer_finished=False, restart=False)
    assert ep.ids[ep.turn_ends[-1] + 1] == tok.eos_token_id and ep.policy_mask[ep.turn_ends[-1] + 1] == 0
    assert not ep.turns[-1].cut and ep.turns[-1].code == "print(1)"


# ------------------------------------------------------------- turn logic

class ScriptedEngine:
    """Answers from a script, one list of texts per problem name; for testing
    the environment's turn logic deterministically (real engines below)."""

    def __init__(self, tokenizer, script):
        self.tok, self.script, self.calls = tokenizer, script, []
        self.answered = {name: 0 for name in script}

    def generate(self, prompts, max_tokens, temperature, top_p, stop=""):
        self.calls.append(len(prompts))
        out = []
        for prompt in prompts:
            text = self.tok.decode(prompt)
            name = next(n for n in self.script if f"[{n}]" in text)
            answer = self.script[name][self.answered[name]]
            self.answered[name] += 1
            ids = self.tok.encode(answer, add_special_tokens=False) + [self.tok.eos_token_id]
            out.append(Completion(ids, [-0.5] * len(ids), finished=True))
        return out


def sum_problem(name):
    return Problem(name, f"[{name}] Read a and b, print a + b.",
                   [Test(input="1 2\n", output="3\n")],
                   [Test(input=f"{i} {i * 3}\n", output=f"{i * 4}\n") for i in range(5)], time_limit=2.0)


GOOD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
WRONG = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"
PUBLIC_ONLY = "```python\nprint(3)\n```"
PROSE = "Just add the two numbers."


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2) as sb:
        yield sb


def test_turn_logic_rewards_and_feedback(smol_tokenizer, sandbox):
    tok = smol_tokenizer
    script = {"first": [GOOD], "repair": [WRONG, GOOD], "never": [PROSE, WRONG, WRONG],
              "overfit": [PUBLIC_ONLY]}
    engine = ScriptedEngine(tok, script)
    cfg = Config(max_turns=3)
    eps = rlef.rollout(engine, sandbox, tok, [sum_problem(n) for n in script], cfg, random.Random(0))
    first, repair, never, overfit = eps
    assert engine.calls == [4, 2, 1]  # one engine call per turn, for the open episodes
    assert [t.verdict for t in first.turns] == ["AC"] and first.solved
    assert [t.verdict for t in repair.turns] == ["WA", "AC"] and repair.solved
    assert [t.verdict for t in never.turns] == ["NOCODE", "WA", "WA"] and not never.solved
    # passes the public test, fails the private ones: the episode ends and is judged a failure
    assert [t.verdict for t in overfit.turns] == ["AC"] and not overfit.solved
    assert overfit.judged[0] == "WA"
    # feedback: the paper's failure line after WA, our no-code message after prose
    assert repair.messages[2]["content"].startswith("Your code failed the following tests:\n- input '1 2\n' failed: "
                                                    "Expected output '3\n' but got '2\n'")
    assert never.messages[2]["content"] == data.no_code_message()
    # rewards: -0.2 on the answer without code, -1 / +1 at the very end
    r = never.rewards(cfg)
    assert r[never.turn_ends[0]] == pytest.approx(-0.2) and r[never.turn_ends[-1]] == -1.0
    assert sum(r) == pytest.approx(-1.2)
    assert repair.rewards(cfg)[repair.turn_ends[-1]] == 1.0 and sum(repair.rewards(cfg)) == 1.0
    # the token sequence holds all turns, and the environment tokens decode to the feedback
    assert len(repair.ids) == len(repair.policy_mask) == len(repair.logprobs)
    env = [t for t, m in zip(repair.ids, repair.policy_mask) if not m]
    assert "Your code failed the following tests" in tok.decode(env)
    assert all(lp == -0.5 for lp, m in zip(repair.logprobs, repair.policy_mask) if m)


def test_single_turn_mode_restarts_and_random_feedback_comes_from_another_problem(smol_tokenizer, sandbox):
    tok = smol_tokenizer
    script = {"a": [WRONG, WRONG, GOOD], "b": [WRONG, WRONG, WRONG]}
    problems = [sum_problem("a"), Problem("b", "[b] Print the input.", [Test(input="7\n", output="7\n")],
                                          [Test(input="8\n", output="8\n")] * 5)]
    cfg = Config(max_turns=3, feedback="none")
    a, b = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, problems, cfg, random.Random(0))
    assert [t.verdict for t in a.turns] == ["WA", "WA", "AC"] and a.solved
    assert len(a.messages) == 2 and sum(a.policy_mask) == len(tok.encode(GOOD, add_special_tokens=False)) + 1
    assert a.rewards(cfg)[a.turn_ends[-1]] == 1.0 and len(a.turn_ends) == 1
    cfg = Config(max_turns=2, feedback="random")
    a, b = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, problems, cfg, random.Random(0))
    assert "input '7\n' failed" in a.messages[2]["content"]       # b's test shown to a
    assert "input '1 2\n' failed" in b.messages[2]["content"]     # a's test shown to b
    assert [t.verdict for t in a.turns] == ["WA", "WA"]          # verdicts stay a's own


def test_context_overflow_ends_the_episode_as_a_failure(smol_tokenizer, sandbox):
    tok = smol_tokenizer
    engine = ScriptedEngine(tok, {"long": [WRONG, WRONG, WRONG]})
    first_prompt = len(rlef.start_episode(tok, sum_problem("long")).ids)
    cfg = Config(max_turns=3, max_context=first_prompt + 60)
    [ep] = rlef.rollout(engine, sandbox, tok, [sum_problem("long")], cfg, random.Random(0))
    assert ep.overflow and not ep.solved and len(ep.turns) == 1
    assert ep.rewards(cfg)[ep.turn_ends[-1]] == -1.0


# ------------------------------------------------------------ real engines

def test_hf_engine_on_a_tiny_model(tiny_model, sandbox):
    tok = data.load_tokenizer(tiny_model)
    cfg = Config(engine="hf", engine_dtype="float32", max_turns=2, max_new_tokens=12, max_context=1024)
    engine = rlef.make_engine(tiny_model, cfg)
    eps = rlef.rollout(engine, sandbox, tok, data.load_easy("valid")[:3], cfg, random.Random(0))
    for ep in eps:  # a random model writes no code: 2 turns, -0.2 each, -1 at the end
        assert [t.verdict for t in ep.turns] == ["NOCODE", "NOCODE"]
        assert sum(ep.rewards(cfg)) == pytest.approx(-1.4)
        assert 2 <= sum(ep.policy_mask) <= 2 * cfg.max_new_tokens
    # behaviour log-probs agree with the trainer's recomputation (same fp32 weights)
    ep = eps[0]
    model = engine.model
    with torch.no_grad():
        logits = model(torch.tensor([ep.ids])).logits.float()
    logp = logits.log_softmax(-1)[0, :-1].gather(-1, torch.tensor(ep.ids[1:])[:, None])[:, 0]
    mask = torch.tensor(ep.policy_mask[1:], dtype=torch.bool)
    assert torch.allclose(logp[mask], torch.tensor(ep.logprobs[1:])[mask], atol=1e-4)


def test_function_call_problems_get_the_checks_message_as_feedback(smol_tokenizer, sandbox):
    tok = smol_tokenizer
    problem = Problem("fn", "[fn] Write `add(a, b)`.", [Test(check="_got = add(1, 2)\nassert _got == 3, 'add(1, 2) returned ' + repr(_got)")],
                      [Test(check=f"assert add({i}, 1) == {i + 1}") for i in range(5)], entry_point="add")
    script = {"fn": ["```python\ndef add(a, b):\n    return a - b\n```", "```python\ndef add(a, b):\n    return a + b\n```"]}
    [ep] = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, [problem], Config(), random.Random(0))
    assert [t.verdict for t in ep.turns] == ["WA", "AC"] and ep.solved
    assert "AssertionError: add(1, 2) returned -1" in ep.messages[2]["content"]


def test_a_function_that_raises_is_reported_in_the_programs_own_lines(smol_tokenizer, sandbox):
    """The traceback of a check that calls the program names test.py and
    solution.py with their lines, never the sandbox's own wrapper."""
    tok = smol_tokenizer
    problem = Problem("fn", "[fn] Write `half(n)`.", [Test(check="_got = half(4)\nassert _got == 2")],
                      [Test(check="assert half(2) == 1")], entry_point="half")
    script = {"fn": ["```python\ndef half(n):\n    return n / 0\n```"] * 2}
    [ep] = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, [problem], Config(max_turns=2), random.Random(0))
    feedback = ep.messages[2]["content"]
    assert 'File "test.py", line 1, in <module>\n    _got = half(4)' in feedback
    assert 'File "solution.py", line 2, in half\n    return n / 0' in feedback
    assert "ZeroDivisionError" in feedback and "sandbox" not in feedback


def test_code_that_does_not_parse_gets_its_syntax_error_as_feedback_and_the_penalty(smol_tokenizer, sandbox):
    """The paper's feedback for syntax errors is the error itself; telling the
    model its answer had no code block (it had one) gave it nothing to repair.
    SmolLM2's "no code" answers were mostly this: 88 of 96 at T = 0.5 on train."""
    tok = smol_tokenizer
    broken = "```python\na, b = map(int, input().split()\nprint(a + b)\n```"
    script = {"broken": [broken, GOOD]}
    cfg = Config(max_turns=3)
    [ep] = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, [sum_problem("broken")], cfg, random.Random(0))
    assert [t.verdict for t in ep.turns] == ["CE", "AC"] and ep.solved
    assert ep.turns[0].code is None and ep.turns[0].public == ["CE"]
    feedback = ep.messages[2]["content"]
    assert feedback.startswith("Your code failed the following tests:\n- input '1 2\n' failed: ")
    assert "SyntaxError: '(' was never closed" in feedback and 'File "solution.py", line 1' in feedback
    r = ep.rewards(cfg)  # still invalid code: -0.2 on that turn
    assert r[ep.turn_ends[0]] == pytest.approx(-0.2) and sum(r) == pytest.approx(0.8)


class WildEngine:
    """Answers no well-behaved model gives: an empty answer, special tokens of
    the template in the middle of an answer, an answer cut inside a UTF-8
    character. The environment takes each as an answer and goes on."""

    def __init__(self, tok):
        special = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])
        code = tok.encode("```python\nprint(1)\n```", add_special_tokens=False)
        cut_char = tok.encode("print('é')", add_special_tokens=False)
        self.answers = [[tok.eos_token_id],                                   # nothing, then the end of turn
                        code[:3] + [special[0]] + tok.encode("user\nhi", add_special_tokens=False)
                        + [special[2]] + code[3:] + [tok.eos_token_id],       # the template's tokens inside
                        [special[0], special[1], special[0]],                 # only special tokens, cut
                        cut_char[:-1]]                                        # cut mid-character
        self.turn = 0

    def generate(self, prompts, max_tokens, temperature, top_p, stop=""):
        ids = self.answers[self.turn % len(self.answers)]
        self.turn += 1
        eot = self.answers[0][0]
        return [Completion(list(ids[:m]), [-1.0] * len(ids[:m]), finished=ids[:m][-1:] == [eot]) for m in max_tokens]


def test_nothing_a_model_samples_stops_the_rollout(smol_tokenizer, sandbox):
    tok = smol_tokenizer
    for start in range(4):  # every kind of answer at every turn
        engine = WildEngine(tok)
        engine.turn = start
        eps = rlef.rollout(engine, sandbox, tok, [sum_problem("w")] * 2, Config(max_turns=3), random.Random(0))
        for ep in eps:
            assert ep.done and 1 <= len(ep.turns) <= 3 and not ep.solved
            assert len(ep.ids) == len(ep.policy_mask) == len(ep.logprobs)
            assert all(t.verdict in ("NOCODE", "WA", "RE", "CE", "AC") for t in ep.turns)


def test_engines_and_their_ranks(tiny_model):
    """Ranks of one tensor-parallel engine play the same problems; engines
    share the step's problems; each rank's engine runs on its own device
    through vLLM's external launcher."""
    train = data.load_easy("train")
    cfg = Config(tensor_parallel_size=2, problems_per_step=8, samples_per_problem=2)
    groups = [rlef.engine_group(cfg, rank, 8) for rank in range(8)]
    assert groups == [(r // 2, 4, r % 2) for r in range(8)]
    shares = [[p.name for p in rlef.problems_for_step(train, cfg, 5, e, n)] for e, n, _ in groups]
    assert shares[0] == shares[1] and shares[2] == shares[3] and shares[0] != shares[2]
    assert sorted(sum(shares[::2], [])) == sorted(p.name for p in rlef.problems_for_step(train, cfg, 5, 0, 1))
    args = rlef.vllm_args(tiny_model, cfg)
    assert args["distributed_executor_backend"] == "external_launcher" and args["tensor_parallel_size"] == 2
    cuda = torch.cuda.is_available()
    assert (args["enforce_eager"], args["enable_sleep_mode"]) == (not cuda, cuda)
