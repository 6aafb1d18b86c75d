"""The built-in easy set (version 2): 571 small programming problems for the laptop demo.

56 task *families* of 6 to 15 *instances*. A family is one kind of task (sum of k
integers, count a letter, balanced brackets, ...) in one style:

- stdin style (28 families): a CodeContests-like statement (Input, Output,
  Example); the program reads standard input and prints the answer. Tests are
  `Test(input=..., output=...)`, judged by the CodeContests checker.
- function style (28 families): "Write a Python function `f(x)` that returns
  ..." plus one example call. Tests are `Test(check=...)`: an assert that runs
  after the program in the same interpreter and says what it got.

The instances of a family differ by a parameter that changes the task, not
just the tests: the constant to multiply by, the letter to count, the
modulus, the bracket types, the function name and what it computes.

Every family is one table row: the statement template, the reference solution
*source* template and an input generator. For each instance the templates are
filled in, inputs are drawn with `random.Random(f"{family}-{i}")`, and the
expected outputs are computed by executing that exact solution source in this
process (stdout captured for stdin style, the return value for function
style). So every test is right by construction, and the shipped `solution` is
the text that produced them; tests/test_easyset.py also runs every solution
through the real sandbox. Instance i has 2 + i % 2 public tests (2, 3, 2, 3, ...)
and 6 private ones, all with distinct inputs; the private tests of every
problem have at least two different answers, and so do its public tests: no
constant program passes either. The first public test is the statement's
example. SmolLM2 likes to hard-code it (`print(f(74, 439))`); a public test
that it has not seen turns that into feedback instead of an episode that ends
at once and fails. Stdin statements end with
one line saying to read standard input and print to standard output (the
prompt appends a period); function statements end with the example call.

Difficulty (per family): 1 = a one-liner to ~5 lines (sum, max, reverse,
count, fizzbuzz for one n), 2 = a small loop or a bit of number theory (gcd,
primes, palindromes, running sums), 3 = a real little algorithm (balanced
brackets, run-length encoding, base conversion, ranges, matrices). Per style:
14 + 9 + 5 families.

Splits are by family, so no family leaks into another split: the families
are grouped into the six strata (style x difficulty), each stratum is sorted
by name and shuffled with `random.Random(f"{SPLIT_SEED}-{style}-{difficulty}")`,
the strata are concatenated (stdin 1, 2, 3, then function 1, 2, 3) and the
j-th family goes to split CYCLE[j % 5] = train, valid, train, test, train.
That gives 34 / 11 / 11 families, 3:1:1 inside every stratum up to rounding,
so every split has both styles and all difficulties. The seed was fixed
before looking at the draw. `python easyset.py` prints it.

A training family's first N_TRAIN = 5 instances are `easy:train` (170
problems); its others are `easy:seen` (133): new instances of the families
trained on, in no training split, where a model that learns what it practises
can show it. easy:valid and easy:test hold all instances of their families
(134 problems each). These sizes let a 10-point paired change in 1@3 lie
about 6 points clear of 0 (docs/environment.md, "Data", says why).

Versions (VERSION; result files record it): 1, 280 problems, 5 instances per
family, 170 / 55 / 55; 2 added instances only, so version 1's problems are
version 2's first 5 instances of every family, unchanged.

SmolLM2-135M-Instruct out of the box solves simple function tasks sometimes
and no stdin task: the set spans from those to ones it never solves, and its
stdin families teach what transfers: read stdin, print exactly the answer.
docs/environment.md ("Data") describes the splits.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import copy
import functools
import io
import random
import string
import sys
import textwrap
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

from sandbox import Test

VERSION = 2  # of the set, recorded by result files (data.version_of); 1: 280 problems, no easy:seen
SPLIT_SEED = 0
CYCLE = ("train", "valid", "train", "test", "train")
N_TRAIN = 5        # instances per training family in easy:train; the others are easy:seen
N_PRIVATE = 6
TIME_LIMIT = 2.0   # CPU seconds per test
MEMORY_MB = 256
STDIN_FOOTER = "Read the input from standard input and print the answer to standard output"


@dataclass
class Family:
    name: str
    style: str          # "stdin" or "function"
    difficulty: int     # 1, 2, 3
    vary: dict          # parameter -> its values, one per instance (all lists equally long)
    text: str           # statement template, filled in with str.format(**parameters)
    solution: str       # reference solution template, the same parameters
    gen: Callable | None  # (rng, parameters) -> stdin text (stdin style) or the call's
    # arguments (a tuple; anything else is the single argument); None: `vary` has a "gen" column


FAMILIES: list[Family] = []


def stdin(name, difficulty, vary, statement, input, output, solution, gen=None):
    """A stdin/stdout family; the statement gets CodeContests' Input and Output sections."""
    text = f"{statement}\n\nInput\n{input}\n\nOutput\n{output}"
    FAMILIES.append(Family(name, "stdin", difficulty, vary, text, solution, gen))


def function(name, difficulty, vary, text, solution, gen=None):
    """A function-call family; `vary` has an "fn" column: the function's name."""
    FAMILIES.append(Family(name, "function", difficulty, vary, text, solution, gen))


# --------------------------------------------------------------------------
# Input helpers
# --------------------------------------------------------------------------

WORDS = """apple banana cherry table pasta tiger sun star stone bread bird blue
    cat car tree train paper pencil pizza plant sea ship box fox six taxi wax
    music moon night river rain house horse lemon orange apricot garden window
    sugar salt bottle butter castle ocean island ant arrow bell bus tomato top
    test sand silver summer ticket pepper piano kite queen zebra jazz quiz""".split()
NAMES = """Ann Bob Carla Dan Eve Frank Grace Hugo Ivy Jack Kim Leo Mia Nina Omar
    Paul Rita Sam Tina Uma Victor Wendy Xavier Yara Zoe""".split()


def ints(r, n, lo, hi):
    return [r.randint(lo, hi) for _ in range(n)]


def line(*values) -> str:
    return " ".join(map(str, values)) + "\n"


def numbers(r, lo, hi, min_n=1, max_n=10) -> str:
    """Two lines: n, then n integers."""
    n = r.randint(min_n, max_n)
    return line(n) + line(*ints(r, n, lo, hi))


def word(r, letters=string.ascii_lowercase, lo=1, hi=8) -> str:
    return "".join(r.choice(letters) for _ in range(r.randint(lo, hi)))


def sentence(r, lo=1, hi=6) -> str:
    return " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))


def maybe_palindrome(r, letters="abc") -> str:
    half = word(r, letters, 1, 4)
    return r.choice([half + half[::-1], half + r.choice(letters) + half[::-1], word(r, letters, 2, 7)])


def brackets(r, opening, closing) -> str:
    """A random balanced bracket string, broken half of the time."""
    out, stack, opened, n = [], [], 0, r.randint(1, 6)
    while opened < n or stack:
        if opened < n and (not stack or r.random() < 0.5):
            stack.append(r.randrange(len(opening)))
            out.append(opening[stack[-1]])
            opened += 1
        else:
            out.append(closing[stack.pop()])
    if r.random() < 0.5:
        i = r.randrange(len(out))
        out[i] = r.choice([c for c in opening + closing if c != out[i]])
    return "".join(out) + "\n"


def name_in_style(r, sep, camel=False) -> str:
    words = [r.choice(WORDS) for _ in range(r.randint(1, 4))]
    if camel:
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return sep.join(words)


def sharing(r, reverse=False) -> list:
    """2-4 words that share a prefix (a suffix if `reverse`)."""
    stem = word(r, "abc", 0, 4)
    words = [stem + word(r, "abcd", 0, 3) for _ in range(r.randint(2, 4))]
    return [w[::-1] for w in words] if reverse else words


def odd_list(r, p):
    return ints(r, r.choice([1, 3, 5, 7]), -20, 20)


def insert(r, s, c) -> str:
    """s with the character c put in at a random place."""
    k = r.randint(0, len(s))
    return s[:k] + c + s[k:]


def with_spaces(r, s) -> str:
    """s with single spaces put between some of its letters."""
    return "".join(c + (" " if k < len(s) - 1 and r.random() < 0.3 else "") for k, c in enumerate(s))


def even_list(r, p) -> str:
    """n, then n integers in [-20, 20] of which at least one is even."""
    a = ints(r, r.randint(1, 10), -20, 20)
    a[r.randrange(len(a))] = 2 * r.randint(-10, 10)
    return line(len(a)) + line(*a)


def gcd_input(r, p) -> str:
    """k numbers; for gcd with a common factor, so that answers are not all 1."""
    if p.op == "gcd":
        g = r.randint(1, 20)
        return line(*(g * r.randint(1, 50) for _ in range(p.k)))
    return line(*ints(r, p.k, 1, 30))


def three_distinct(r, p) -> list:
    while True:
        a = ints(r, r.randint(3, 8), -9, 9)
        if len(set(a)) >= 3:
            return a


# ==========================================================================
# stdin / stdout families
# ==========================================================================

# ---- difficulty 1 --------------------------------------------------------

stdin("sum_of_k", 1, dict(k=[2, 3, 4, 5, 6, 7, 8, 9, 10]),
    "You are given {k} integers. Print their sum.",
    input="A single line with {k} integers separated by spaces, each between -1000 and 1000.",
    output="Print one integer: the sum of the {k} integers.",
    solution="print(sum(map(int, input().split())))",
    gen=lambda r, p: line(*ints(r, p.k, -1000, 1000)))

stdin("linear", 1, dict(expr=["2 * n + 3", "3 * n - 1", "5 * n", "10 * n + 7", "20 - n",
                              "4 * n - 5", "7 - 2 * n", "6 * n + 1", "100 - 3 * n", "-4 * n", "8 * n - 8",
                              "n + 42", "9 * n + 9", "15 - 7 * n", "11 * n - 20"]),
    "You are given an integer n. Print the value of {expr}.",
    input="A single line with one integer n (-1000 <= n <= 1000).",
    output="Print one integer: {expr}.",
    solution="""
    n = int(input())
    print({expr})""",
    gen=lambda r, p: line(r.randint(-1000, 1000)))

stdin("power", 1, dict(k=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    "You are given an integer n. Print n to the power {k}, that is, n multiplied by itself {k} times.",
    input="A single line with one integer n (-30 <= n <= 30).",
    output="Print one integer: n to the power {k}.",
    solution="""
    n = int(input())
    print(n ** {k})""",
    gen=lambda r, p: line(r.randint(-30, 30)))

stdin("greeting", 1, dict(greet=["Hello", "Good morning", "Welcome", "Hi", "Goodbye",
                                 "Good evening", "Hey", "Good night", "Nice to meet you"]),
    'You are given a name. Greet the person: print "{greet}, " followed by the name and an exclamation mark.',
    input="A single line with the name: one word of English letters.",
    output='Print the greeting, for example "{greet}, Alice!" for the name Alice.',
    solution="""
    name = input()
    print("{greet}, " + name + "!")""",
    gen=lambda r, p: r.choice(NAMES) + "\n")

stdin("repeat_word", 1, dict(k=[2, 3, 4, 5, 7, 6, 8, 9, 10, 11, 12, 15, 20, 25]),
    "You are given a word. Print it {k} times on one line, separated by single spaces.",
    input="A single line with one word of lowercase English letters.",
    output="Print the word {k} times, separated by spaces.",
    solution="""
    w = input()
    print(' '.join([w] * {k}))""",
    gen=lambda r, p: word(r) + "\n")

stdin("list_reduce", 1, dict(
        what=["the sum of the numbers", "the largest of the numbers", "the smallest of the numbers",
              "how many of the numbers are even", "how many of the numbers are negative",
              "the sum of the absolute values of the numbers", "how many of the numbers are positive",
              "the largest of the numbers minus the smallest of them", "how many of the numbers are odd"],
        expr=["sum(a)", "max(a)", "min(a)", "sum(1 for x in a if x % 2 == 0)", "sum(1 for x in a if x < 0)",
              "sum(abs(x) for x in a)", "sum(1 for x in a if x > 0)", "max(a) - min(a)",
              "sum(1 for x in a if x % 2)"]),
    "You are given n integers. Print {what}.",
    input="The first line contains an integer n (1 <= n <= 10). The second line contains n integers separated by spaces, each between -100 and 100.",
    output="Print one integer: {what}.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    print({expr})""",
    gen=lambda r, p: numbers(r, -100, 100))

stdin("divmod_units", 1, dict(d=[60, 24, 7, 12, 100, 1000, 16, 10, 3600],
                              big=["minutes", "days", "weeks", "feet", "dollars", "kilometers", "pounds", "centimeters",
                                   "hours"],
                              one=["minute", "day", "week", "foot", "dollar", "kilometer", "pound", "centimeter", "hour"],
                              small=["seconds", "hours", "days", "inches", "cents", "meters", "ounces", "millimeters",
                                     "seconds"]),
    "One {one} is {d} {small}. You are given an amount of n {small}. Write it as whole {big} plus the remaining {small}.",
    input="A single line with one integer n (0 <= n <= 100000).",
    output="Print two integers separated by a space: the number of whole {big} and the number of {small} left over.",
    solution="""
    n = int(input())
    print(n // {d}, n % {d})""",
    gen=lambda r, p: line(r.choice([r.randint(0, 100000), r.randint(0, 3 * p.d)])))

stdin("letters_in_set", 1, dict(letters=["aeiou", "xyz", "abc", "mn", "rst",
                                         "aei", "pq", "lmn", "bcd"],
                                shown=["a, e, i, o or u", "x, y or z", "a, b or c", "m or n", "r, s or t",
                                       "a, e or i", "p or q", "l, m or n", "b, c or d"]),
    "You are given a word. Print how many of its letters are one of {shown}.",
    input="A single line with one word of lowercase English letters (at most 20 letters).",
    output="Print one integer: the number of letters of the word that are one of {shown}.",
    solution="""
    s = input()
    print(sum(1 for ch in s if ch in '{letters}'))""",
    gen=lambda r, p: word(r, string.ascii_lowercase + p.letters * 4, 1, 20) + "\n")

stdin("range_sum", 1, dict(
        what=["the sum 1 + 2 + ... + n", "the factorial of n, n! = 1 * 2 * ... * n",
              "the sum of squares 1 * 1 + 2 * 2 + ... + n * n",
              "the sum of all even numbers from 1 to n", "the sum of all odd numbers from 1 to n",
              "the sum of cubes 1 * 1 * 1 + 2 * 2 * 2 + ... + n * n * n",
              "the product of all odd numbers from 1 to n",
              "the sum of all multiples of 3 from 1 to n (0 if there is none)",
              "the alternating sum 1 - 2 + 3 - 4 + ..., up to n (i is added for odd i and subtracted for even i)",
              "the sum of the powers of two 1 + 2 + 4 + ... + 2 to the power n - 1 (n terms)",
              "how many of the numbers from 1 to n are divisible by 2 or by 3",
              "the sum 1 * 2 + 2 * 3 + ... + n * (n + 1)"],
        code=["print(sum(range(1, n + 1)))",
              "f = 1\nfor i in range(2, n + 1):\n    f *= i\nprint(f)",
              "print(sum(i * i for i in range(1, n + 1)))",
              "print(sum(range(2, n + 1, 2)))", "print(sum(range(1, n + 1, 2)))",
              "print(sum(i ** 3 for i in range(1, n + 1)))",
              "p = 1\nfor i in range(1, n + 1, 2):\n    p *= i\nprint(p)", "print(sum(range(3, n + 1, 3)))",
              "print(sum(i if i % 2 else -i for i in range(1, n + 1)))",
              "print(sum(2 ** i for i in range(n)))",
              "print(sum(1 for i in range(1, n + 1) if i % 2 == 0 or i % 3 == 0))",
              "print(sum(i * (i + 1) for i in range(1, n + 1)))"]),
    "You are given a positive integer n. Print {what}.",
    input="A single line with one integer n (1 <= n <= 20).",
    output="Print one integer: {what}.",
    solution="""
    n = int(input())
    {code}""",
    gen=lambda r, p: line(r.randint(1, 20)))

stdin("fizzbuzz_one", 1, dict(a=[3, 2, 3, 5, 2, 2, 4, 3, 5], b=[5, 7, 4, 6, 3, 5, 7, 8, 9],
                              x=["Fizz", "Foo", "Ping", "Tic", "Zip", "Ding", "Bip", "Yin", "Tick"],
                              y=["Buzz", "Bar", "Pong", "Tac", "Zap", "Dong", "Bop", "Yang", "Tock"]),
    "You are given a positive integer n. If n is divisible by both {a} and {b}, print {x}{y}. Otherwise, if n is divisible by {a}, print {x}, and if n is divisible by {b}, print {y}. If n is divisible by neither {a} nor {b}, print n itself.",
    input="A single line with one integer n (1 <= n <= 1000).",
    output="Print {x}{y}, {x}, {y} or the number n, as described.",
    solution="""
    n = int(input())
    if n % {a} == 0 and n % {b} == 0:
        print("{x}{y}")
    elif n % {a} == 0:
        print("{x}")
    elif n % {b} == 0:
        print("{y}")
    else:
        print(n)""",
    gen=lambda r, p: line(r.randint(1, 20) * r.choice([p.a * p.b, p.a, p.b, 1])))

stdin("sort_numbers", 1, dict(
        what=["all n numbers in increasing order", "all n numbers in decreasing order",
              "the distinct values among the numbers in increasing order, each value once",
              "the distinct values among the numbers in decreasing order, each value once",
              "only the even numbers, in increasing order (repeated values are printed repeatedly)",
              "the numbers in increasing order of their absolute values (of two numbers with the same absolute value, the negative one first)",
              "the three smallest numbers in increasing order (all of them if n < 3)",
              "the numbers in the reverse of their order in the input (the last number first)",
              "only the even numbers, in decreasing order (repeated values are printed repeatedly)"],
        code=["print(*sorted(a))", "print(*sorted(a, reverse=True))", "print(*sorted(set(a)))",
              "print(*sorted(set(a), reverse=True))", "print(*sorted(x for x in a if x % 2 == 0))",
              "print(*sorted(a, key=lambda x: (abs(x), x)))", "print(*sorted(a)[:3])", "print(*a[::-1])",
              "print(*sorted((x for x in a if x % 2 == 0), reverse=True))"]),
    "You are given n integers. Print {what}.",
    input="The first line contains an integer n (1 <= n <= 10). The second line contains n integers separated by spaces, each between -20 and 20; at least one of them is even.",
    output="Print {what}, on one line, separated by spaces.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    {code}""",
    gen=even_list)

stdin("words_starting_with", 1, dict(c=["a", "b", "s", "t", "p",
                                        "m", "c", "r", "w"]),
    "You are given a line of words. Print how many of the words start with the letter {c}.",
    input="A single line with at most 10 words of lowercase English letters, separated by single spaces.",
    output="Print one integer: the number of words that start with the letter {c}.",
    solution="""
    words = input().split()
    print(sum(1 for w in words if w.startswith('{c}')))""",
    gen=lambda r, p: line(*(r.choice([r.choice(WORDS), p.c + word(r, hi=5)]) for _ in range(r.randint(1, 10)))))

stdin("prefix_suffix", 1, dict(
        what=["the first 3 letters of s", "the last 2 letters of s", "the first letter of s",
              "the last 4 letters of s", "s without its first and last letters",
              "the first 2 letters of s", "the last 3 letters of s", "the last letter of s",
              "the first 4 letters of s", "s without its first letter", "s without its last 2 letters",
              "the first and the last letter of s"],
        expr=["s[:3]", "s[-2:]", "s[0]", "s[-4:]", "s[1:-1]",
              "s[:2]", "s[-3:]", "s[-1]", "s[:4]", "s[1:]", "s[:-2]", "s[0] + s[-1]"]),
    "You are given a word s. Print {what}.",
    input="A single line with the word s: 5 to 10 lowercase English letters.",
    output="Print {what}.",
    solution="""
    s = input()
    print({expr})""",
    gen=lambda r, p: word(r, lo=5, hi=10) + "\n")

stdin("geometry", 1, dict(
        names=["a, b", "a, b", "a, b, c", "a, b, c", "a, b, c",
               "a, b", "a, b", "a, b", "a, b", "a, b, c", "a, b, c", "a, b, c"],
        what=["the area of a rectangle with sides a and b", "the perimeter of a rectangle with sides a and b",
              "the volume of a box with sides a, b and c", "the total area of the six faces of a box with sides a, b and c",
              "the total length of the twelve edges of a box with sides a, b and c",
              "the area of a right triangle with legs a and b, rounded down to an integer",
              "the total area of two squares, one with side a and one with side b",
              "the number of unit squares on the border of a rectangle of a by b unit squares",
              "how many whole pieces of length b can be cut from a stick of length a",
              "the sum of the areas of three faces of a box with sides a, b and c that meet at one corner",
              "the area of the largest face of a box with sides a, b and c",
              "the area of the smallest face of a box with sides a, b and c"],
        expr=["a * b", "2 * (a + b)", "a * b * c", "2 * (a * b + b * c + a * c)", "4 * (a + b + c)",
              "a * b // 2", "a * a + b * b", "a * b - max(a - 2, 0) * max(b - 2, 0)", "a // b",
              "a * b + b * c + a * c", "max(a * b, b * c, a * c)", "min(a * b, b * c, a * c)"]),
    "You are given the integer side lengths {names}. Print {what}.",
    input="A single line with the integers {names}, in this order, separated by spaces (each between 1 and 1000).",
    output="Print one integer: {what}.",
    solution="""
    {names} = map(int, input().split())
    print({expr})""",
    gen=lambda r, p: line(*ints(r, len(p.names.split()), 1, 1000)))

# ---- difficulty 2 --------------------------------------------------------

stdin("gcd_lcm", 2, dict(k=[2, 2, 3, 3, 4, 4, 5, 5, 6], op=["gcd", "lcm"] * 4 + ["gcd"],
                         what=["greatest common divisor", "least common multiple"] * 4 + ["greatest common divisor"]),
    "You are given {k} positive integers. Print their {what}.",
    input="A single line with {k} integers separated by spaces, each between 1 and 1000.",
    output="Print one integer: the {what} of the {k} numbers.",
    solution="""
    import math
    nums = list(map(int, input().split()))
    print(math.{op}(*nums))""",
    gen=gcd_input)

stdin("primes", 2, dict(
        what=["YES if n is a prime number and NO otherwise", "the number of primes p with p <= n",
              "the smallest prime p with p >= n", "the largest prime p with p <= n",
              "the sum of all primes p with p <= n",
              "the number of primes p with n <= p <= 2 * n",
              "YES if n and n + 2 are both prime and NO otherwise",
              "the number of different primes that divide n", "the largest prime that divides n",
              "the smallest prime that divides n", "the n-th prime number (the first prime number is 2)",
              "YES if the sum of the decimal digits of n is a prime number and NO otherwise"],
        lo=[1, 1, 1, 2, 1, 1, 1, 1, 2, 2, 1, 1],
        code=["print('YES' if is_prime(n) else 'NO')", "print(sum(1 for p in range(n + 1) if is_prime(p)))",
              "p = n\nwhile not is_prime(p):\n    p += 1\nprint(p)",
              "p = n\nwhile not is_prime(p):\n    p -= 1\nprint(p)", "print(sum(p for p in range(n + 1) if is_prime(p)))",
              "print(sum(1 for p in range(n, 2 * n + 1) if is_prime(p)))",
              "print('YES' if is_prime(n) and is_prime(n + 2) else 'NO')",
              "print(sum(1 for p in range(2, n + 1) if n % p == 0 and is_prime(p)))",
              "print(max(p for p in range(2, n + 1) if n % p == 0 and is_prime(p)))",
              "print(min(p for p in range(2, n + 1) if n % p == 0 and is_prime(p)))",
              "count, p = 0, 1\nwhile count < n:\n    p += 1\n    count += is_prime(p)\nprint(p)",
              "print('YES' if is_prime(sum(map(int, str(n)))) else 'NO')"]),
    "A prime number is an integer greater than 1 whose only positive divisors are 1 and itself. You are given an integer n. Print {what}.",
    input="A single line with one integer n ({lo} <= n <= 1000).",
    output="Print {what}.",
    solution="""
    def is_prime(k):
        if k < 2:
            return False
        return all(k % d for d in range(2, int(k ** 0.5) + 1))

    n = int(input())
    {code}""",
    gen=lambda r, p: line(r.choice([r.randint(p.lo, 30), r.randint(p.lo, 1000),
                                     r.choice([2, 3, 5, 7, 11, 13, 29, 97, 101, 211, 499, 997])])))

stdin("running", 2, dict(
        what=["n numbers: the i-th is a_1 + a_2 + ... + a_i (the running sum)",
              "n numbers: the i-th is the largest of a_1, ..., a_i (the running maximum)",
              "n numbers: the i-th is the smallest of a_1, ..., a_i (the running minimum)",
              "n numbers: the i-th is the product a_1 * a_2 * ... * a_i (the running product)",
              "n - 1 numbers: the i-th is a_(i+1) - a_i (the differences between neighbours)",
              "n - 1 numbers: the i-th is a_i + a_(i+1) (the sums of neighbours)",
              "n numbers: the i-th is a_i + a_(i+1) + ... + a_n (the running sum from the end)",
              "n numbers: the i-th is the largest of a_i, ..., a_n (the running maximum from the end)",
              "n - 1 numbers: the i-th is a_i * a_(i+1) (the products of neighbours)"],
        code=["print(*itertools.accumulate(a))", "print(*itertools.accumulate(a, max))",
              "print(*itertools.accumulate(a, min))", "print(*itertools.accumulate(a, lambda x, y: x * y))",
              "print(*[a[i + 1] - a[i] for i in range(n - 1)])",
              "print(*[a[i] + a[i + 1] for i in range(n - 1)])",
              "print(*list(itertools.accumulate(a[::-1]))[::-1])",
              "print(*list(itertools.accumulate(a[::-1], max))[::-1])",
              "print(*[a[i] * a[i + 1] for i in range(n - 1)])"]),
    "You are given n integers a_1, ..., a_n. Print {what}.",
    input="The first line contains an integer n (2 <= n <= 10). The second line contains n integers a_1, ..., a_n separated by spaces, each between -9 and 9.",
    output="Print {what}, on one line, separated by spaces.",
    solution="""
    import itertools
    n = int(input())
    a = list(map(int, input().split()))
    {code}""",
    gen=lambda r, p: numbers(r, -9, 9, min_n=2))

stdin("palindrome", 2, dict(
        what=["the word s", "the decimal notation of n", "the binary notation of n (without leading zeros)",
              "the line, after removing all its spaces,", "the word s, ignoring upper and lower case,",
              "the line, after removing all its spaces and ignoring upper and lower case,",
              "the octal notation of n (base 8, without leading zeros)", "the decimal notation of n * n",
              "the word s, after removing all its letters x,"],
        given=["a word s of lowercase English letters", "one integer n (1 <= n <= 10^9)",
               "one integer n (1 <= n <= 100000)", "lowercase English letters and single spaces (at least one letter)",
               "a word s of English letters, some of them upper-case",
               "English letters, some of them upper-case, and single spaces (at least one letter)",
               "one integer n (1 <= n <= 10^10)", "one integer n (1 <= n <= 100000)",
               "a word s of the lowercase letters a, b, c, d and x (at least one letter other than x)"],
        read=["s = input()", "s = str(int(input()))", "s = bin(int(input()))[2:]",
              "s = input().replace(' ', '')", "s = input().lower()",
              "s = input().replace(' ', '').lower()", "s = oct(int(input()))[2:]",
              "s = str(int(input()) ** 2)", "s = input().replace('x', '')"],
        gen=[lambda r, p: maybe_palindrome(r) + "\n",
             lambda r, p: maybe_palindrome(r, "123456789") + "\n",
             lambda r, p: line(int("1" + maybe_palindrome(r, "01") + "1", 2)),
             lambda r, p: with_spaces(r, maybe_palindrome(r, "abcd")) + "\n",
             lambda r, p: "".join(c.upper() if r.random() < 0.4 else c for c in maybe_palindrome(r, "abcd")) + "\n",
             lambda r, p: with_spaces(r, ''.join(c.upper() if r.random() < 0.4 else c for c in maybe_palindrome(r, "abcd"))) + "\n",
             lambda r, p: line(int("1" + maybe_palindrome(r, "01234567") + "1", 8)),
             lambda r, p: line(r.choice([r.randint(1, 100000), r.choice([1, 2, 3, 11, 22, 26, 101, 111, 121, 212, 264, 307, 836, 1001, 2002])])),
             lambda r, p: ''.join(r.choice(['', 'x', 'xx']) + c for c in maybe_palindrome(r, "abcd")) + r.choice(['', 'x']) + "\n"]),
    "Print YES if {what} is a palindrome, that is, reads the same forwards and backwards, and NO otherwise.",
    input="A single line with {given}.",
    output="Print YES or NO.",
    solution="""
    {read}
    print('YES' if s == s[::-1] else 'NO')""")

stdin("caesar", 2, dict(k=[1, 3, 5, 13, 25, 2, 7, 10, 20], to_a=["b", "d", "f", "n", "z",
                                                "c", "h", "k", "u"], to_z=["a", "c", "e", "m", "y",
                                                                           "b", "g", "j", "t"]),
    "You are given a word s of lowercase English letters. Encrypt it: replace every letter by the letter {k} positions later in the alphabet, wrapping around from z back to a. For example, a becomes {to_a} and z becomes {to_z}. Print the encrypted word.",
    input="A single line with the word s (1 to 12 letters).",
    output="Print the encrypted word.",
    solution="""
    s = input()
    print(''.join(chr((ord(ch) - ord('a') + {k}) % 26 + ord('a')) for ch in s))""",
    gen=lambda r, p: word(r, lo=1, hi=12) + "\n")

stdin("grid_sums", 2, dict(
        what=["the sum of the main diagonal, a[1][1] + a[2][2] + ... + a[n][n]",
              "the sum of the other diagonal, a[1][n] + a[2][n-1] + ... + a[n][1]",
              "the largest sum of a row", "the largest sum of a column",
              "the sum of the numbers on the border of the grid (the first and last rows and columns, each cell counted once)",
              "the smallest sum of a row", "the sum of all numbers of the grid",
              "the largest number of the grid",
              "the sum of the numbers above the main diagonal (the numbers a[i][j] with i < j; 0 if there is none)"],
        code=["print(sum(g[i][i] for i in range(n)))", "print(sum(g[i][n - 1 - i] for i in range(n)))",
              "print(max(sum(row) for row in g))", "print(max(sum(row[j] for row in g) for j in range(n)))",
              "print(sum(g[i][j] for i in range(n) for j in range(n) if i in (0, n - 1) or j in (0, n - 1)))",
              "print(min(sum(row) for row in g))", "print(sum(map(sum, g)))", "print(max(map(max, g)))",
              "print(sum(g[i][j] for i in range(n) for j in range(i + 1, n)))"]),
    "You are given a square grid of n by n integers; a[i][j] is the number in row i and column j. Print {what}.",
    input="The first line contains an integer n (1 <= n <= 6). Each of the next n lines contains n integers separated by spaces, each between -50 and 50: the rows of the grid.",
    output="Print one integer: {what}.",
    solution="""
    n = int(input())
    g = [list(map(int, input().split())) for _ in range(n)]
    {code}""",
    gen=lambda r, p: (lambda n: line(n) + "".join(line(*ints(r, n, -50, 50)) for _ in range(n)))(r.randint(1, 6)))

stdin("k_largest_sum", 2, dict(k=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    "You are given n integers. Print the sum of the {k} largest of them. If the same value occurs several times, every occurrence counts as a separate number.",
    input="The first line contains an integer n ({k} <= n <= 12). The second line contains n integers separated by spaces, each between -100 and 100.",
    output="Print one integer: the sum of the {k} largest numbers.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    print(sum(sorted(a, reverse=True)[:{k}]))""",
    gen=lambda r, p: numbers(r, -100, 100, min_n=p.k, max_n=12))

stdin("value_counts", 2, dict(
        what=["the number of distinct values among the numbers", "how many values occur exactly once",
              "the value that occurs most often (if several values occur equally often, the smallest of them)",
              "how many times the most frequent value occurs",
              "the number of pairs of positions i < j with a_i = a_j",
              "the smallest value that occurs exactly once, or 0 if there is none",
              "how many different values occur more than once", "how many times the number 6 occurs",
              "the value that occurs least often (if several values occur equally rarely, the largest of them)",
              "how many of the numbers are equal to the first number a_1 (a_1 itself included)",
              "how many of the values 1, 2, 3, 4, 5, 6 do not occur among the numbers",
              "the number of positions i with a_i = i"],
        code=["print(len(set(a)))", "print(sum(1 for x in set(a) if a.count(x) == 1))",
              "print(min(a, key=lambda x: (-a.count(x), x)))", "print(max(a.count(x) for x in a))",
              "print(sum(1 for i in range(n) for j in range(i + 1, n) if a[i] == a[j]))",
              "print(min([x for x in a if a.count(x) == 1], default=0))",
              "print(sum(1 for x in set(a) if a.count(x) > 1))", "print(a.count(6))",
              "print(min(a, key=lambda x: (a.count(x), -x)))", "print(a.count(a[0]))",
              "print(sum(1 for v in range(1, 7) if v not in a))",
              "print(sum(1 for i in range(n) if a[i] == i + 1))"]),
    "You are given n integers a_1, ..., a_n. Print {what}.",
    input="The first line contains an integer n (1 <= n <= 10). The second line contains n integers separated by spaces, each between 1 and 6.",
    output="Print one integer: {what}.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    {code}""",
    gen=lambda r, p: numbers(r, 1, 6))

stdin("fibonacci_like", 2, dict(f0=[0, 2, 1, 3, 5, 1, 0, 4, 2], f1=[1, 1, 2, 4, 0, 1, 3, 1, 5]),
    "A sequence is defined by f(0) = {f0}, f(1) = {f1} and f(i) = f(i - 1) + f(i - 2) for every i >= 2. You are given n. Print f(n).",
    input="A single line with one integer n (0 <= n <= 50).",
    output="Print one integer: f(n).",
    solution="""
    n = int(input())
    a, b = {f0}, {f1}
    for _ in range(n):
        a, b = b, a + b
    print(a)""",
    gen=lambda r, p: line(r.choice([r.randint(0, 10), r.randint(0, 50)])))

# ---- difficulty 3 --------------------------------------------------------

stdin("brackets", 3, dict(opening=["(", "[", "([", "({", "([{",
                                   "{", "[{", "<", "(<"], closing=[")", "]", ")]", ")}", ")]}",
                                                                   "}", "]}", ">", ")>"],
                          shown=["( and )", "[ and ]", "(, ), [ and ]", "(, ), { and }", "(, ), [, ], { and }",
                                 "{ and }", "[, ], { and }", "< and >", "(, ), < and >"]),
    'You are given a string made of the brackets {shown}. Print YES if it is balanced and NO otherwise. A string is balanced if every opening bracket is closed later by a closing bracket of the same type, and brackets close in the reverse order of opening: "([])" is balanced, "([)]" and ")(" are not (with the bracket types of this problem).',
    input="A single line with the string (1 to 12 characters).",
    output="Print YES or NO.",
    solution="""
    s = input().strip()
    stack = []
    ok = True
    for ch in s:
        if ch in '{opening}':
            stack.append(ch)
        elif not stack or '{opening}'.index(stack.pop()) != '{closing}'.index(ch):
            ok = False
            break
    print('YES' if ok and not stack else 'NO')""",
    gen=lambda r, p: brackets(r, p.opening, p.closing))

stdin("window_sum", 3, dict(k=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    "You are given n integers a_1, ..., a_n. Print the largest sum of {k} consecutive numbers, that is, the largest value of a_i + a_(i+1) + ... + a_(i+{k}-1).",
    input="The first line contains an integer n ({k} <= n <= 12). The second line contains n integers separated by spaces, each between -50 and 50.",
    output="Print one integer: the largest sum of {k} consecutive numbers.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    print(max(sum(a[i:i + {k}]) for i in range(n - {k} + 1)))""",
    gen=lambda r, p: numbers(r, -50, 50, min_n=p.k, max_n=12))

stdin("longest_run", 3, dict(
        what=["all equal", "strictly increasing (each is larger than the one before it)", "all even",
              "all positive", "non-decreasing (each is at least the one before it)",
              "all odd", "all negative", "strictly decreasing (each is smaller than the one before it)",
              "all different from 0"],
        zero=["", "", " (0 if there is no even number)", " (0 if there is no positive number)", "",
              " (0 if there is no odd number)", " (0 if there is no negative number)", "",
              " (0 if every number is 0)"],
        code=["cur = cur + 1 if i > 0 and a[i] == a[i - 1] else 1",
              "cur = cur + 1 if i > 0 and a[i] > a[i - 1] else 1",
              "cur = cur + 1 if a[i] % 2 == 0 else 0", "cur = cur + 1 if a[i] > 0 else 0",
              "cur = cur + 1 if i > 0 and a[i] >= a[i - 1] else 1",
              "cur = cur + 1 if a[i] % 2 else 0", "cur = cur + 1 if a[i] < 0 else 0",
              "cur = cur + 1 if i > 0 and a[i] < a[i - 1] else 1", "cur = cur + 1 if a[i] != 0 else 0"]),
    "You are given n integers. Print the length of the longest block of consecutive positions whose numbers are {what}{zero}.",
    input="The first line contains an integer n (1 <= n <= 12). The second line contains n integers separated by spaces, each between -3 and 5.",
    output="Print one integer: the length of the longest such block.",
    solution="""
    n = int(input())
    a = list(map(int, input().split()))
    best = cur = 0
    for i in range(n):
        {code}
        best = max(best, cur)
    print(best)""",
    gen=lambda r, p: numbers(r, -3, 5, max_n=12))

stdin("run_length", 3, dict(
        how=["the letter followed by the length of the run: aaabcc becomes a3b1c2",
             "the length of the run followed by the letter: aaabcc becomes 3a1b2c",
             "the letter followed by the length of the run, leaving out lengths equal to 1: aaabcc becomes a3bc2",
             "the letter followed by the length of the run, with a space between runs: aaabcc becomes a3 b1 c2",
             "just the length of the run, with a space between runs: aaabcc becomes 3 1 2",
             "the length of the run followed by the letter, with a space between runs: aaabcc becomes 3a 1b 2c",
             "the letter followed by the length of the run in parentheses: aaabcc becomes a(3)b(1)c(2)",
             "just the letter, once per run: aaabcc becomes abc",
             "the letter followed by the length of the run, with a comma between runs: aaabcc becomes a3,b1,c2"],
        out=["''.join(c + str(k) for c, k in runs)", "''.join(str(k) + c for c, k in runs)",
             "''.join(c + (str(k) if k > 1 else '') for c, k in runs)", "' '.join(c + str(k) for c, k in runs)",
             "' '.join(str(k) for c, k in runs)",
             "' '.join(str(k) + c for c, k in runs)", "''.join(c + '(' + str(k) + ')' for c, k in runs)",
             "''.join(c for c, k in runs)", "','.join(c + str(k) for c, k in runs)"]),
    "You are given a word. Split it into runs: maximal blocks of equal consecutive letters. Print the run-length encoding of the word, which writes every run, in order, as {how}.",
    input="A single line with a word of lowercase English letters (1 to 20 letters).",
    output="Print the encoded word.",
    solution="""
    s = input()
    runs = []
    for ch in s:
        if runs and runs[-1][0] == ch:
            runs[-1][1] += 1
        else:
            runs.append([ch, 1])
    print({out})""",
    gen=lambda r, p: "".join(r.choice("abc") * r.randint(1, 4) for _ in range(r.randint(1, 5))) + "\n")

stdin("base_convert", 3, dict(b=[2, 3, 5, 7, 8, 4, 6, 9]),
    "You are given a non-negative integer n. Print n written in base {b}, without leading zeros (0 is written as 0).",
    input="A single line with one integer n (0 <= n <= 10000).",
    output="Print the base-{b} digits of n.",
    solution="""
    n = int(input())
    digits = ''
    while n > 0:
        digits = str(n % {b}) + digits
        n //= {b}
    print(digits or '0')""",
    gen=lambda r, p: line(r.choice([0, r.randint(1, 50), r.randint(1, 10000)])))

# ==========================================================================
# function families
# ==========================================================================

# ---- difficulty 1 --------------------------------------------------------

function("arith2", 1, dict(
        fn=["add", "subtract", "multiply", "larger", "distance",
            "smaller", "average_floor", "sum_of_squares", "sum_times_difference", "twice_the_sum",
            "sum_of_absolutes", "product_plus_sum"],
        what=["the sum of a and b", "a minus b", "the product of a and b", "the larger of a and b",
              "the absolute difference between a and b",
              "the smaller of a and b", "the average of a and b rounded down, (a + b) // 2", "a * a + b * b",
              "(a + b) * (a - b)", "twice the sum of a and b", "the sum of the absolute values of a and b",
              "a * b + a + b"],
        expr=["a + b", "a - b", "a * b", "max(a, b)", "abs(a - b)",
              "min(a, b)", "(a + b) // 2", "a * a + b * b", "(a + b) * (a - b)", "2 * (a + b)",
              "abs(a) + abs(b)", "a * b + a + b"]),
    "Write a Python function `{fn}(a, b)` that takes two integers and returns {what}.",
    solution="""
    def {fn}(a, b):
        return {expr}""",
    gen=lambda r, p: (r.randint(-100, 100), r.randint(-100, 100)))

function("parity", 1, dict(
        fn=["is_even", "is_odd", "divisible_by_3", "divisible_by_5", "divisible_by_7",
            "divisible_by_4", "divisible_by_6", "divisible_by_9", "divisible_by_10"],
        cond=["even", "odd", "divisible by 3", "divisible by 5", "divisible by 7",
              "divisible by 4", "divisible by 6", "divisible by 9", "divisible by 10"],
        d=[2, 2, 3, 5, 7, 4, 6, 9, 10], expr=["n % 2 == 0", "n % 2 == 1", "n % 3 == 0", "n % 5 == 0", "n % 7 == 0",
                               "n % 4 == 0", "n % 6 == 0", "n % 9 == 0", "n % 10 == 0"]),
    "Write a Python function `{fn}(n)` that returns True if the integer n is {cond} and False otherwise.",
    solution="""
    def {fn}(n):
        return {expr}""",
    gen=lambda r, p: p.d * r.randint(-20, 30) + r.choice([0, r.randint(1, p.d - 1)]))

function("count_char", 1, dict(fn=["count_a", "count_e", "count_o", "count_x", "count_s",
                                   "count_i", "count_t", "count_n", "count_r"],
                               c=["a", "e", "o", "x", "s",
                                  "i", "t", "n", "r"]),
    "Write a Python function `{fn}(s)` that returns how many times the letter '{c}' occurs in the string s.",
    solution="""
    def {fn}(s):
        return s.count('{c}')""",
    gen=lambda r, p: " ".join(insert(r, w, p.c) if r.random() < 0.4 else w for w in sentence(r, 1, 5).split()))

function("reverse", 1, dict(
        fn=["reverse_string", "reverse_list", "reverse_words", "reverse_each_word", "reverse_digits",
            "reverse_upper", "reverse_words_and_letters", "reverse_signed", "reverse_last_word"],
        arg=["s", "a", "s", "s", "n",
             "s", "words", "n", "s"],
        what=["returns the string s reversed",
              "returns a new list with the elements of the list a in reverse order",
              "returns the words of the sentence s in reverse order, joined by single spaces (the words in s are separated by single spaces)",
              "returns the sentence s with every word reversed but the words kept in their order (the words in s are separated by single spaces)",
              "returns the number whose decimal digits are the digits of the non-negative integer n in reverse order (leading zeros disappear: 120 gives 21)",
              "returns the string s reversed and in upper case",
              "returns a new list with the strings of the list words in reverse order, each string reversed too",
              "returns the integer whose decimal digits are those of the integer n in reverse order, with the sign of n (-120 gives -21)",
              "returns the sentence s with only its last word reversed (the words in s are separated by single spaces)"],
        expr=["s[::-1]", "a[::-1]", "' '.join(s.split()[::-1])", "' '.join(w[::-1] for w in s.split())",
              "int(str(n)[::-1])",
              "s[::-1].upper()", "[w[::-1] for w in words[::-1]]",
              "int(str(abs(n))[::-1]) * (1 if n >= 0 else -1)",
              "' '.join(s.split()[:-1] + [s.split()[-1][::-1]])"],
        gen=[lambda r, p: word(r, lo=0, hi=10), lambda r, p: ints(r, r.randint(0, 7), -9, 9),
             lambda r, p: sentence(r), lambda r, p: sentence(r),
             lambda r, p: r.choice([r.randint(0, 99999), 10 * r.randint(0, 999)]),
             lambda r, p: word(r, lo=0, hi=10), lambda r, p: [r.choice(WORDS) for _ in range(r.randint(0, 5))],
             lambda r, p: r.choice([r.randint(-9999, 9999), 10 * r.randint(-999, 999)]),
             lambda r, p: sentence(r)]),
    "Write a Python function `{fn}({arg})` that {what}.",
    solution="""
    def {fn}({arg}):
        return {expr}""")

function("case", 1, dict(
        fn=["to_upper", "to_lower", "swap_case", "capitalize_words", "capitalize_first",
            "lower_first", "upper_last", "upper_vowels", "alternate_case", "upper_last_letters",
            "upper_first_word", "upper_consonants"],
        what=["all letters in upper case", "all letters in lower case",
              "every upper-case letter made lower-case and every lower-case letter made upper-case",
              "the first letter of every word in upper case and all other letters in lower case (words are separated by single spaces)",
              "its first character in upper case and all other characters in lower case",
              "its first character in lower case and all other characters unchanged",
              "its last character in upper case and all other characters unchanged",
              "every vowel (a, e, i, o, u) in upper case and every other letter in lower case",
              "the characters at even positions (0, 2, 4, ...) in upper case and all other characters in lower case",
              "the last letter of every word in upper case and all other letters in lower case (words are separated by single spaces)",
              "its first word in upper case and the rest unchanged (words are separated by single spaces)",
              "every vowel (a, e, i, o, u) in lower case and every other letter in upper case"],
        expr=["s.upper()", "s.lower()", "s.swapcase()", "' '.join(w.capitalize() for w in s.split(' '))",
              "s.capitalize()",
              "s[:1].lower() + s[1:]", "s[:-1] + s[-1:].upper()",
              "''.join(c.upper() if c.lower() in 'aeiou' else c.lower() for c in s)",
              "''.join(c.upper() if i % 2 == 0 else c.lower() for i, c in enumerate(s))",
              "' '.join(w[:-1].lower() + w[-1:].upper() for w in s.split(' '))",
              "' '.join([s.split(' ')[0].upper()] + s.split(' ')[1:])",
              "''.join(c.lower() if c.lower() in 'aeiou' else c.upper() for c in s)"]),
    "Write a Python function `{fn}(s)` that returns the string s with {what}.",
    solution="""
    def {fn}(s):
        return {expr}""",
    gen=lambda r, p: "".join(c.upper() if r.random() < 0.3 else c for c in sentence(r, 1, 4)))

function("list_map", 1, dict(
        fn=["double_all", "square_all", "add_ten", "negate_all", "halve_all",
            "triple_all", "subtract_one", "absolute_all", "last_digits", "is_even_all", "cube_all",
            "double_plus_one"],
        what=["doubled", "squared", "increased by 10", "negated (its sign flipped)", "halved and rounded down (x // 2)",
              "tripled", "decreased by 1", "replaced by its absolute value",
              "replaced by the last decimal digit of its absolute value",
              "replaced by True if it is even and by False otherwise", "cubed (x * x * x)",
              "doubled and then increased by 1"],
        expr=["[x * 2 for x in a]", "[x * x for x in a]", "[x + 10 for x in a]", "[-x for x in a]", "[x // 2 for x in a]",
              "[x * 3 for x in a]", "[x - 1 for x in a]", "[abs(x) for x in a]", "[abs(x) % 10 for x in a]",
              "[x % 2 == 0 for x in a]", "[x ** 3 for x in a]", "[2 * x + 1 for x in a]"]),
    "Write a Python function `{fn}(a)` that takes a list of integers a and returns a new list in which every element of a is {what}, in the same order.",
    solution="""
    def {fn}(a):
        return {expr}""",
    gen=lambda r, p: ints(r, r.randint(0, 6), -20, 20))

function("list_filter", 1, dict(
        fn=["keep_evens", "keep_odds", "keep_positives", "keep_big", "keep_multiples_of_3",
            "keep_negatives", "keep_small", "keep_nonzero", "keep_multiples_of_4"],
        what=["even", "odd", "positive", "greater than 10", "divisible by 3",
              "negative", "between -5 and 5 (both included)", "not 0", "divisible by 4"],
        cond=["x % 2 == 0", "x % 2 == 1", "x > 0", "x > 10", "x % 3 == 0",
              "x < 0", "-5 <= x <= 5", "x != 0", "x % 4 == 0"]),
    "Write a Python function `{fn}(a)` that takes a list of integers a and returns a new list with only the elements of a that are {what}, in their original order.",
    solution="""
    def {fn}(a):
        return [x for x in a if {cond}]""",
    gen=lambda r, p: ints(r, r.randint(0, 8), -20, 20))

function("string_test", 1, dict(
        fn=["starts_with_the", "ends_with_ing", "contains_cat", "is_number", "is_long",
            "starts_with_a", "ends_with_ed", "contains_dog", "is_upper_word", "is_short", "has_double_letter",
            "only_vowels"],
        what=["starts with 'the'", "ends with 'ing'", "contains 'cat'",
              "is not empty and consists only of the digits 0-9", "has more than 5 characters",
              "starts with the letter 'a'", "ends with 'ed'", "contains 'dog'",
              "is not empty and consists only of the upper-case letters A-Z", "has fewer than 4 characters",
              "has two equal characters next to each other",
              "is not empty and consists only of the vowels a, e, i, o and u"],
        expr=["s.startswith('the')", "s.endswith('ing')", "'cat' in s", "s.isdigit()", "len(s) > 5",
              "s.startswith('a')", "s.endswith('ed')", "'dog' in s", "s.isalpha() and s.isupper()",
              "len(s) < 4", "any(s[i] == s[i + 1] for i in range(len(s) - 1))",
              "s != '' and all(c in 'aeiou' for c in s)"],
        gen=[lambda r, p: r.choice(["the", "th", "t", ""]) + word(r, "aehrt", 0, 5),
             lambda r, p: word(r, "aegint", 0, 5) + r.choice(["ing", "ing", "ng", "ingo"]),
             lambda r, p: word(r, "actx", 0, 3) + r.choice(["cat", "ca", "at", ""]) + word(r, "actx", 0, 3),
             lambda r, p: r.choice([word(r, "0123456789", 0, 5), word(r, "0123456789ab -", 1, 5)]),
             lambda r, p: word(r, lo=0, hi=10),
             lambda r, p: word(r, "abc", 0, 5),
             lambda r, p: word(r, "bdes", 0, 4) + r.choice(["ed", "ed", "d", "e"]),
             lambda r, p: word(r, "dgox", 0, 3) + r.choice(["dog", "do", "og", ""]) + word(r, "dgox", 0, 3),
             lambda r, p: r.choice([word(r, "ABC", 0, 5), word(r, "ABCab1", 1, 5)]),
             lambda r, p: word(r, lo=0, hi=8), lambda r, p: word(r, "abc", 0, 6),
             lambda r, p: r.choice([word(r, "aeiou", 0, 4), word(r, "aeioub", 1, 4)])]),
    "Write a Python function `{fn}(s)` that returns True if the string s {what}, and False otherwise.",
    solution="""
    def {fn}(s):
        return {expr}""")

function("join_words", 1, dict(
        fn=["join_with_dashes", "join_with_commas", "join_with_spaces", "join_with_plus", "concat_all",
            "join_with_slashes", "join_with_semicolons", "join_with_underscores", "join_with_arrows"],
        sep=["-", ", ", " ", " + ", "",
             "/", "; ", "_", " -> "],
        shown=["a dash '-'", "a comma and a space ', '", "a single space ' '", "' + ' (space, plus, space)", "nothing",
               "a slash '/'", "a semicolon and a space '; '", "an underscore '_'",
               "' -> ' (space, dash, greater-than sign, space)"]),
    "Write a Python function `{fn}(words)` that takes a list of strings and returns them joined into one string, with {shown} between neighbouring strings.",
    solution="""
    def {fn}(words):
        return '{sep}'.join(words)""",
    gen=lambda r, p: [r.choice(WORDS) for _ in range(r.randint(0, 5))])

function("pick_element", 1, dict(
        fn=["first_item", "last_item", "second_item", "middle_item", "second_to_last",
            "third_item", "third_to_last", "first_plus_last", "first_times_last", "last_minus_first",
            "after_middle", "middle_pair_sum"],
        what=["the first element", "the last element", "the second element",
              "the middle element (the list has an odd length)", "the second-to-last element",
              "the third element (the list has at least three elements)",
              "the third-to-last element (the list has at least three elements)",
              "the sum of the first and the last element", "the product of the first and the last element",
              "the last element minus the first element",
              "the element right after the middle one (the list has an odd length of at least 3)",
              "the sum of the two middle elements (the list has an even length)"],
        expr=["a[0]", "a[-1]", "a[1]", "a[len(a) // 2]", "a[-2]",
              "a[2]", "a[-3]", "a[0] + a[-1]", "a[0] * a[-1]", "a[-1] - a[0]", "a[len(a) // 2 + 1]",
              "a[len(a) // 2 - 1] + a[len(a) // 2]"],
        gen=[odd_list, odd_list, lambda r, p: ints(r, r.randint(2, 7), -20, 20), odd_list,
             lambda r, p: ints(r, r.randint(2, 7), -20, 20),
             lambda r, p: ints(r, r.randint(3, 7), -20, 20), lambda r, p: ints(r, r.randint(3, 7), -20, 20),
             lambda r, p: ints(r, r.randint(1, 7), -20, 20), lambda r, p: ints(r, r.randint(1, 7), -20, 20),
             lambda r, p: ints(r, r.randint(1, 7), -20, 20),
             lambda r, p: ints(r, r.choice([3, 5, 7]), -20, 20),
             lambda r, p: ints(r, r.choice([2, 4, 6]), -20, 20)]),
    "Write a Python function `{fn}(a)` that returns {what} of the non-empty list a.",
    solution="""
    def {fn}(a):
        return {expr}""")

function("word_stats", 1, dict(
        fn=["count_words", "count_letters", "count_spaces", "longest_word_length", "first_word_length",
            "shortest_word_length", "last_word_length", "count_long_words", "count_distinct_words"],
        what=["the number of words in s", "the number of characters of s that are not spaces",
              "the number of spaces in s", "the length of the longest word in s", "the length of the first word of s",
              "the length of the shortest word in s", "the length of the last word of s",
              "the number of words in s with more than 4 letters", "the number of different words in s"],
        expr=["len(s.split())", "len(s.replace(' ', ''))", "s.count(' ')", "max(len(w) for w in s.split())",
              "len(s.split()[0])",
              "min(len(w) for w in s.split())", "len(s.split()[-1])",
              "sum(1 for w in s.split() if len(w) > 4)", "len(set(s.split()))"]),
    "Write a Python function `{fn}(s)` that takes a sentence s (at least one word; words of lowercase letters separated by single spaces) and returns {what}.",
    solution="""
    def {fn}(s):
        return {expr}""",
    gen=lambda r, p: " ".join(r.choice([r.choice(WORDS), word(r, lo=1, hi=9)]) for _ in range(r.randint(1, 7))))

function("three_numbers", 1, dict(
        fn=["max_of_three", "min_of_three", "middle_of_three", "sum_of_three", "product_of_three",
            "range_of_three", "sum_of_squares_of_three", "average_of_three", "count_positive",
            "sum_of_two_largest", "count_even", "largest_absolute"],
        what=["the largest of them", "the smallest of them", "the middle one when the three are sorted",
              "their sum", "their product",
              "the largest of them minus the smallest of them", "the sum of their squares",
              "their sum divided by 3 and rounded down, (a + b + c) // 3", "how many of them are positive",
              "the sum of the two largest of them", "how many of them are even",
              "the largest of their absolute values"],
        expr=["max(a, b, c)", "min(a, b, c)", "sorted([a, b, c])[1]", "a + b + c", "a * b * c",
              "max(a, b, c) - min(a, b, c)", "a * a + b * b + c * c", "(a + b + c) // 3",
              "sum(1 for x in (a, b, c) if x > 0)", "a + b + c - min(a, b, c)",
              "sum(1 for x in (a, b, c) if x % 2 == 0)", "max(abs(a), abs(b), abs(c))"]),
    "Write a Python function `{fn}(a, b, c)` that takes three integers and returns {what}.",
    solution="""
    def {fn}(a, b, c):
        return {expr}""",
    gen=lambda r, p: tuple(ints(r, 3, -50, 50)))

function("remove_chars", 1, dict(
        fn=["remove_spaces", "remove_vowels", "remove_digits", "spaces_to_underscores", "remove_letter_a",
            "remove_uppercase", "remove_letter_e", "keep_only_letters", "spaces_to_dashes"],
        what=["all spaces removed", "all vowels (a, e, i, o, u, in lower or upper case) removed",
              "all digits 0-9 removed", "every space replaced by an underscore '_'", "every lowercase letter 'a' removed",
              "all upper-case letters removed", "every lowercase letter 'e' removed",
              "every character that is not a letter removed", "every space replaced by a dash '-'"],
        expr=["s.replace(' ', '')", "''.join(ch for ch in s if ch.lower() not in 'aeiou')",
              "''.join(ch for ch in s if not ch.isdigit())", "s.replace(' ', '_')", "s.replace('a', '')",
              "''.join(ch for ch in s if not ch.isupper())", "s.replace('e', '')",
              "''.join(ch for ch in s if ch.isalpha())", "s.replace(' ', '-')"]),
    "Write a Python function `{fn}(s)` that returns the string s with {what}.",
    solution="""
    def {fn}(s):
        return {expr}""",
    gen=lambda r, p: "".join(c.upper() if r.random() < 0.2 else c for c in sentence(r, 1, 4)) + r.choice(["", " 42", "7"]))

function("number_ops", 1, dict(
        fn=["absolute", "sign", "square", "cube", "last_digit",
            "double", "negate", "first_digit", "successor"],
        what=["the absolute value of n", "1 if n is positive, -1 if n is negative and 0 if n is zero",
              "n multiplied by itself", "n * n * n", "the last decimal digit of n (for negative n, of -n)",
              "twice n", "n with its sign flipped (-n)",
              "the first decimal digit of n (for negative n, of -n)",
              "the integer that comes right after n (n + 1)"],
        expr=["abs(n)", "(n > 0) - (n < 0)", "n * n", "n ** 3", "abs(n) % 10",
              "2 * n", "-n", "int(str(abs(n))[0])", "n + 1"]),
    "Write a Python function `{fn}(n)` that takes an integer n and returns {what}.",
    solution="""
    def {fn}(n):
        return {expr}""",
    gen=lambda r, p: r.choice([0, r.randint(-20, 20), r.randint(-1000, 1000)]))

# ---- difficulty 2 --------------------------------------------------------

function("digits", 2, dict(
        fn=["digit_sum", "digit_product", "count_digits", "largest_digit", "count_sevens",
            "smallest_digit", "count_even_digits", "first_digit", "last_digit", "count_odd_digits",
            "count_zeros", "digit_sum_is_even"],
        what=["the sum of its decimal digits", "the product of its decimal digits",
              "the number of its decimal digits (0 has one digit)", "its largest decimal digit",
              "how many of its decimal digits are 7",
              "its smallest decimal digit", "how many of its decimal digits are even",
              "its first (leftmost) decimal digit", "its last (rightmost) decimal digit",
              "how many of its decimal digits are odd", "how many of its decimal digits are 0",
              "True if the sum of its decimal digits is even and False otherwise"],
        expr=["sum(int(d) for d in str(n))", "math.prod(int(d) for d in str(n))", "len(str(n))",
              "max(int(d) for d in str(n))", "str(n).count('7')",
              "min(int(d) for d in str(n))", "sum(1 for d in str(n) if int(d) % 2 == 0)", "int(str(n)[0])",
              "n % 10", "sum(1 for d in str(n) if int(d) % 2 == 1)", "str(n).count('0')",
              "sum(int(d) for d in str(n)) % 2 == 0"]),
    "Write a Python function `{fn}(n)` that takes a non-negative integer n and returns {what}.",
    solution="""
    import math

    def {fn}(n):
        return {expr}""",
    gen=lambda r, p: int(word(r, "01234567897", 1, 7)))

function("is_sorted", 2, dict(
        fn=["is_sorted", "is_strictly_increasing", "is_non_increasing", "is_strictly_decreasing", "all_equal",
            "no_equal_neighbours", "is_consecutive", "close_neighbours", "same_parity"],
        what=["every element is less than or equal to the next one", "every element is less than the next one",
              "every element is greater than or equal to the next one", "every element is greater than the next one",
              "all elements are equal",
              "no element is equal to the next one", "every element is exactly 1 less than the next one",
              "every element differs from the next one by at most 1",
              "all elements are even or all elements are odd"],
        expr=["all(a[i] <= a[i + 1] for i in range(len(a) - 1))", "all(a[i] < a[i + 1] for i in range(len(a) - 1))",
              "all(a[i] >= a[i + 1] for i in range(len(a) - 1))", "all(a[i] > a[i + 1] for i in range(len(a) - 1))",
              "len(set(a)) <= 1",
              "all(a[i] != a[i + 1] for i in range(len(a) - 1))",
              "all(a[i] + 1 == a[i + 1] for i in range(len(a) - 1))",
              "all(abs(a[i] - a[i + 1]) <= 1 for i in range(len(a) - 1))", "len({x % 2 for x in a}) <= 1"]),
    "Write a Python function `{fn}(a)` that returns True if in the list of integers a {what}, and False otherwise (a list with fewer than two elements gives True).",
    solution="""
    def {fn}(a):
        return {expr}""",
    gen=lambda r, p: r.choice([sorted, lambda a: sorted(a, reverse=True), lambda a: a[:1] * len(a),
                               lambda a: sorted(set(a)), lambda a: sorted(set(a), reverse=True), lambda a: a])(ints(r, r.randint(0, 6), 0, 5)))

function("duplicates", 2, dict(
        fn=["unique", "remove_adjacent_duplicates", "duplicated_values", "values_once", "most_common",
            "count_distinct", "first_repeated", "remove_ones", "equal_neighbours", "max_count",
            "sorted_unique", "unique_by_last"],
        what=["a new list with the elements of a in order of first occurrence, each value only once",
              "a new list in which every block of equal neighbouring elements of a is replaced by one element",
              "the sorted list of the values that occur more than once in a",
              "the list of the elements of a that occur exactly once in a, in their order in a",
              "the value that occurs most often in a (a is not empty); on a tie, the smallest such value",
              "the number of distinct values in a",
              "the first element of a that also occurs earlier in a, or None if there is none",
              "a new list with the elements of a except those equal to 1, in their order",
              "the number of positions i with a[i] == a[i + 1]",
              "how many times the most frequent value occurs in a",
              "the sorted list of the distinct values of a",
              "a new list with each value of a once, in the order of the last occurrences of the values in a"],
        expr=["list(dict.fromkeys(a))", "[x for i, x in enumerate(a) if i == 0 or a[i - 1] != x]",
              "sorted(x for x in set(a) if a.count(x) > 1)", "[x for x in a if a.count(x) == 1]",
              "min(a, key=lambda x: (-a.count(x), x))",
              "len(set(a))", "next((x for i, x in enumerate(a) if x in a[:i]), None)",
              "[x for x in a if x != 1]", "sum(1 for i in range(len(a) - 1) if a[i] == a[i + 1])",
              "max(a.count(x) for x in a)", "sorted(set(a))", "list(dict.fromkeys(a[::-1]))[::-1]"]),
    "Write a Python function `{fn}(a)` that takes a list of integers a and returns {what}.",
    solution="""
    def {fn}(a):
        return {expr}""",
    gen=lambda r, p: ints(r, r.randint(1, 9), 1, 5))

function("char_freq", 2, dict(
        fn=["char_counts", "most_frequent_char", "first_unique_char", "count_distinct_chars", "sorted_letters",
            "count_repeated_chars", "least_frequent_char", "max_char_count", "chars_by_frequency"],
        what=["a dictionary that maps every character of s to the number of times it occurs in s",
              "the character that occurs most often in s; on a tie, the one that comes first in the alphabet",
              "the first character of s that occurs exactly once in s, or the empty string '' if there is none",
              "the number of different characters in s", "a string with the characters of s in alphabetical order",
              "the number of different characters that occur more than once in s",
              "the character that occurs least often in s; on a tie, the one that comes first in the alphabet",
              "the number of times the most frequent character occurs in s",
              "a string of the different characters of s, the most frequent first (on a tie, in alphabetical order)"],
        expr=["dict((c, s.count(c)) for c in s)", "min(s, key=lambda c: (-s.count(c), c))",
              "next((c for c in s if s.count(c) == 1), '')", "len(set(s))", "''.join(sorted(s))",
              "sum(1 for c in set(s) if s.count(c) > 1)", "min(s, key=lambda c: (s.count(c), c))",
              "max(s.count(c) for c in s)", "''.join(sorted(set(s), key=lambda c: (-s.count(c), c)))"]),
    "Write a Python function `{fn}(s)` that takes a non-empty string s of lowercase letters and returns {what}.",
    solution="""
    def {fn}(s):
        return {expr}""",
    gen=lambda r, p: word(r, "abcde", 1, 10))

function("rotate", 2, dict(
        fn=["rotate_left_1", "rotate_right_1", "rotate_left_2", "rotate_right_2", "rotate_left_3",
            "rotate_right_3"],
        k=[1, 1, 2, 2, 3, 3], side=["left", "right", "left", "right", "left",
                     "right"],
        expr=["a[1:] + a[:1]", "a[-1:] + a[:-1]", "a[2:] + a[:2]", "a[-2:] + a[:-2]", "a[3:] + a[:3]",
              "a[-3:] + a[:-3]"],
        example=["[2, 3, 4, 1]", "[4, 1, 2, 3]", "[3, 4, 1, 2]", "[3, 4, 1, 2]", "[4, 1, 2, 3]",
                 "[2, 3, 4, 1]"]),
    "Write a Python function `{fn}(a)` that returns a new list: the list a rotated by {k} to the {side}, so that [1, 2, 3, 4] becomes {example}. The list a has more than {k} elements.",
    solution="""
    def {fn}(a):
        return {expr}""",
    gen=lambda r, p: ints(r, r.randint(p.k + 1, 8), -9, 9))

function("divisors", 2, dict(
        fn=["divisors", "count_divisors", "sum_proper_divisors", "is_perfect", "largest_proper_divisor",
            "smallest_divisor", "sum_divisors", "is_prime_number", "count_odd_divisors"],
        what=["the sorted list of all positive divisors of n", "the number of positive divisors of n",
              "the sum of the positive divisors of n that are smaller than n",
              "True if n is perfect (equal to the sum of its positive divisors smaller than n, like 6 = 1 + 2 + 3) and False otherwise",
              "the largest positive divisor of n that is smaller than n",
              "the smallest divisor of n that is greater than 1", "the sum of all positive divisors of n",
              "True if n is prime (its only positive divisors are 1 and n) and False otherwise",
              "the number of odd positive divisors of n"],
        expr=["[d for d in range(1, n + 1) if n % d == 0]", "sum(1 for d in range(1, n + 1) if n % d == 0)",
              "sum(d for d in range(1, n) if n % d == 0)", "sum(d for d in range(1, n) if n % d == 0) == n",
              "max(d for d in range(1, n) if n % d == 0)",
              "min(d for d in range(2, n + 1) if n % d == 0)", "sum(d for d in range(1, n + 1) if n % d == 0)",
              "all(n % d for d in range(2, n))", "sum(1 for d in range(1, n + 1, 2) if n % d == 0)"]),
    "Write a Python function `{fn}(n)` that takes an integer n >= 2 and returns {what}.",
    solution="""
    def {fn}(n):
        return {expr}""",
    gen=lambda r, p: r.choice([r.randint(2, 30), r.randint(2, 500), r.choice([6, 28, 496, 8128])]))

function("power_check", 2, dict(
        fn=["is_power_of_two", "is_power_of_three", "is_power_of_four", "is_power_of_five", "is_power_of_ten",
            "is_power_of_six", "is_power_of_seven", "is_power_of_eight", "is_power_of_nine"],
        k=[2, 3, 4, 5, 10, 6, 7, 8, 9]),
    "Write a Python function `{fn}(n)` that takes a positive integer n and returns True if n is a power of {k} (1, {k}, {k} * {k}, ...) and False otherwise.",
    solution="""
    def {fn}(n):
        while n % {k} == 0:
            n //= {k}
        return n == 1""",
    gen=lambda r, p: r.choice([p.k ** r.randint(0, 6), p.k ** r.randint(1, 5) + r.choice([-1, 1, p.k]),
                           r.randint(1, 1000)]))

function("multiples_sum", 2, dict(
        fn=["sum_multiples_3_5", "sum_multiples_2_7", "sum_multiples_4_6", "sum_multiples_5_7", "sum_multiples_3_11",
            "sum_multiples_2_3", "sum_multiples_4_5", "sum_multiples_6_7", "sum_multiples_2_9"],
        a=[3, 2, 4, 5, 3, 2, 4, 6, 2], b=[5, 7, 6, 7, 11, 3, 5, 7, 9]),
    "Write a Python function `{fn}(n)` that returns the sum of all positive integers smaller than n that are divisible by {a} or by {b} (or both).",
    solution="""
    def {fn}(n):
        return sum(x for x in range(1, n) if x % {a} == 0 or x % {b} == 0)""",
    gen=lambda r, p: r.choice([r.randint(1, 20), r.randint(1, 300)]))

function("order_stats", 2, dict(
        fn=["second_largest", "second_smallest", "third_largest", "largest_even", "smallest_positive",
            "third_smallest", "value_range", "count_max", "smallest_odd", "largest_negative",
            "median_distinct", "sum_two_largest"],
        what=["the second largest distinct value in a", "the second smallest distinct value in a",
              "the third largest distinct value in a", "the largest even number in a, or None if a has no even number",
              "the smallest positive number in a, or None if a has no positive number",
              "the third smallest distinct value in a", "the largest value in a minus the smallest value in a",
              "how many times the largest value occurs in a",
              "the smallest odd number in a, or None if a has no odd number",
              "the largest negative number in a, or None if a has no negative number",
              "the middle one of the distinct values of a in increasing order (of an even number of them, the smaller of the two middle ones)",
              "the sum of the two largest distinct values in a"],
        expr=["sorted(set(a))[-2]", "sorted(set(a))[1]", "sorted(set(a))[-3]",
              "max((x for x in a if x % 2 == 0), default=None)", "min((x for x in a if x > 0), default=None)",
              "sorted(set(a))[2]", "max(a) - min(a)", "a.count(max(a))",
              "min((x for x in a if x % 2), default=None)", "max((x for x in a if x < 0), default=None)",
              "sorted(set(a))[(len(set(a)) - 1) // 2]", "sum(sorted(set(a))[-2:])"]),
    "Write a Python function `{fn}(a)` that takes a list of integers a with at least three different values and returns {what}.",
    solution="""
    def {fn}(a):
        return {expr}""",
    gen=three_distinct)

# ---- difficulty 3 --------------------------------------------------------

function("pair_sum", 3, dict(
        fn=["pairs_summing_to_10", "pairs_summing_to_0", "pairs_summing_to_7", "pairs_summing_to_5", "pairs_summing_to_12",
            "pairs_summing_to_1", "pairs_summing_to_2", "pairs_summing_to_3", "pairs_summing_to_4",
            "pairs_summing_to_6", "pairs_summing_to_8", "pairs_summing_to_9", "pairs_summing_to_11",
            "pairs_summing_to_13", "pairs_summing_to_15"],
        k=[10, 0, 7, 5, 12, 1, 2, 3, 4, 6, 8, 9, 11, 13, 15]),
    "Write a Python function `{fn}(a)` that takes a list of integers a and returns the number of pairs of positions i < j with a[i] + a[j] == {k}.",
    solution="""
    def {fn}(a):
        count = 0
        for i in range(len(a)):
            for j in range(i + 1, len(a)):
                if a[i] + a[j] == {k}:
                    count += 1
        return count""",
    gen=lambda r, p: ints(r, r.randint(2, 10), p.k // 2 - 6, p.k // 2 + 6))

function("matrix_ops", 3, dict(
        fn=["transpose", "rotate_clockwise", "rotate_counterclockwise", "column_sums", "read_by_columns",
            "row_sums", "mirror_rows", "flip_upside_down", "read_by_rows"],
        what=["the transpose of m: row i of the result is column i of m",
              "m rotated 90 degrees clockwise (the first row of the result is the first column of m read from bottom to top)",
              "m rotated 90 degrees counterclockwise (the first row of the result is the last column of m read from top to bottom)",
              "the list of the sums of the columns of m",
              "one list with all elements of m read column by column: the first column from top to bottom, then the second, and so on",
              "the list of the sums of the rows of m",
              "m with every row reversed (mirrored from left to right)",
              "m with its rows in reverse order (mirrored from top to bottom)",
              "one list with all elements of m read row by row: the first row from left to right, then the second, and so on"],
        expr=["[list(col) for col in zip(*m)]", "[list(col) for col in zip(*m[::-1])]",
              "[list(col) for col in zip(*m)][::-1]", "[sum(col) for col in zip(*m)]",
              "[x for col in zip(*m) for x in col]",
              "[sum(row) for row in m]", "[row[::-1] for row in m]", "[list(row) for row in m[::-1]]",
              "[x for row in m for x in row]"]),
    "Write a Python function `{fn}(m)` that takes a matrix m, given as a non-empty list of rows (lists of integers, all of the same non-zero length), and returns {what}.",
    solution="""
    def {fn}(m):
        return {expr}""",
    gen=lambda r, p: (lambda w: [ints(r, w, 0, 9) for _ in range(r.randint(1, 4))])(r.randint(1, 4)))

function("compress_ranges", 3, dict(
        fn=["compress_ranges", "summarize_ranges", "format_ranges", "ranges_string", "collapse_ranges",
            "ranges_text", "describe_ranges", "range_list", "join_ranges", "ranges_summary", "write_ranges",
            "short_ranges"],
        sep=["-", "..", ":", "-", "~",
             " to ", "..", "-", ":", "~", "_", "-"], join=[",", ", ", " ", ";", ",",
                                                           ", ", ",", " ", ";", " ", ",", "|"]),
    "Write a Python function `{fn}(a)` that takes a sorted list of distinct non-negative integers and describes it as a string of ranges: every maximal block of consecutive integers x, x + 1, ..., y with y > x is written as x{sep}y, a number that is not part of such a block is written alone, and the pieces are joined by '{join}'. An empty list gives ''.",
    solution="""
    def {fn}(a):
        parts = []
        i = 0
        while i < len(a):
            j = i
            while j + 1 < len(a) and a[j + 1] == a[j] + 1:
                j += 1
            parts.append(str(a[i]) if i == j else str(a[i]) + '{sep}' + str(a[j]))
            i = j + 1
        return '{join}'.join(parts)""",
    gen=lambda r, p: sorted(r.sample(range(20), r.randint(0, 12))))

function("case_styles", 3, dict(
        fn=["snake_to_camel", "camel_to_snake", "snake_to_pascal", "kebab_to_camel", "camel_to_kebab",
            "snake_to_kebab", "kebab_to_snake", "pascal_to_snake", "camel_to_pascal"],
        what=["a snake_case name (lowercase words joined by '_', like 'big_red_car') into camelCase ('bigRedCar')",
              "a camelCase name (like 'bigRedCar') into snake_case ('big_red_car')",
              "a snake_case name (like 'big_red_car') into PascalCase ('BigRedCar')",
              "a kebab-case name (lowercase words joined by '-', like 'big-red-car') into camelCase ('bigRedCar')",
              "a camelCase name (like 'bigRedCar') into kebab-case ('big-red-car')",
              "a snake_case name (like 'big_red_car') into kebab-case ('big-red-car')",
              "a kebab-case name (like 'big-red-car') into snake_case ('big_red_car')",
              "a PascalCase name (like 'BigRedCar') into snake_case ('big_red_car')",
              "a camelCase name (like 'bigRedCar') into PascalCase ('BigRedCar')"],
        expr=["s.split('_')[0] + ''.join(w.capitalize() for w in s.split('_')[1:])",
              "''.join('_' + c.lower() if c.isupper() else c for c in s)",
              "''.join(w.capitalize() for w in s.split('_'))",
              "s.split('-')[0] + ''.join(w.capitalize() for w in s.split('-')[1:])",
              "''.join('-' + c.lower() if c.isupper() else c for c in s)",
              "s.replace('_', '-')", "s.replace('-', '_')",
              "''.join('_' + c.lower() if c.isupper() else c for c in s)[1:]", "s[:1].upper() + s[1:]"],
        gen=[lambda r, p: name_in_style(r, "_"), lambda r, p: name_in_style(r, "", camel=True),
             lambda r, p: name_in_style(r, "_"), lambda r, p: name_in_style(r, "-"),
             lambda r, p: name_in_style(r, "", camel=True),
             lambda r, p: name_in_style(r, "_"), lambda r, p: name_in_style(r, "-"),
             lambda r, p: (lambda s: s[0].upper() + s[1:])(name_in_style(r, "", camel=True)),
             lambda r, p: name_in_style(r, "", camel=True)]),
    "Write a Python function `{fn}(s)` that converts {what} and returns it.",
    solution="""
    def {fn}(s):
        return {expr}""")

function("common_prefix", 3, dict(
        fn=["common_prefix", "common_suffix", "shared_letters", "common_prefix_length", "common_suffix_length",
            "longest_word", "shortest_word", "all_letters", "total_length"],
        what=["the longest string that all of them start with ('' if there is none)",
              "the longest string that all of them end with ('' if there is none)",
              "a string of the distinct letters that occur in every word, in alphabetical order",
              "the length of the longest string that all of them start with",
              "the length of the longest string that all of them end with",
              "the longest of the strings (the first one on a tie)",
              "the shortest of the strings (the first one on a tie)",
              "a string of the distinct letters that occur in any of the strings, in alphabetical order",
              "the total number of characters of all the strings"],
        expr=["prefix(words)", "prefix([w[::-1] for w in words])[::-1]",
              "''.join(sorted(set.intersection(*[set(w) for w in words])))",
              "len(prefix(words))", "len(prefix([w[::-1] for w in words]))",
              "max(words, key=len)", "min(words, key=len)", "''.join(sorted(set(''.join(words))))",
              "sum(len(w) for w in words)"],
        gen=[lambda r, p: sharing(r), lambda r, p: sharing(r, reverse=True), lambda r, p: sharing(r),
             lambda r, p: sharing(r), lambda r, p: sharing(r, reverse=True),
             lambda r, p: sharing(r), lambda r, p: sharing(r, reverse=True), lambda r, p: sharing(r),
             lambda r, p: sharing(r, reverse=True)]),
    "Write a Python function `{fn}(words)` that takes a non-empty list of strings and returns {what}.",
    solution="""
    def prefix(words):
        p = words[0]
        for w in words[1:]:
            while not w.startswith(p):
                p = p[:-1]
        return p

    def {fn}(words):
        return {expr}""")


# ==========================================================================
# Building the problems
# ==========================================================================

def run_stdin(source: str, stdin_text: str) -> str:
    """What `source` prints when run as a program on `stdin_text` (in-process)."""
    out, saved = io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(stdin_text)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, "<solution>", "exec"), {"__name__": "__main__"})
    finally:
        sys.stdin = saved
    return out.getvalue()


def call(fn: str, args: tuple) -> str:
    return f"{fn}({', '.join(map(repr, args))})"


def check(fn: str, args: tuple, want) -> str:
    """A function-call test: runs after the program; its message says what came back."""
    if ast.literal_eval(repr(want)) != want:
        raise ValueError(f"{fn}: expected value {want!r} is not a Python literal")
    return f"_got = {call(fn, args)}\nassert _got == {want!r}, {f'expected {want!r}, got '!r} + repr(_got)"


def build(fam: Family, i: int, split: str) -> dict:
    """Instance i of a family: fill in the templates, draw inputs, compute outputs."""
    params = {key: values[i] for key, values in fam.vary.items()}
    p = SimpleNamespace(**params)
    gen = fam.gen or params["gen"]
    text = textwrap.dedent(fam.text).strip().format(**params)
    solution = textwrap.dedent(fam.solution).strip().format(**params) + "\n"
    if fam.style == "stdin":
        entry, answer = None, functools.partial(run_stdin, solution)
    else:
        entry, namespace = params["fn"], {"__name__": "__main__"}
        exec(compile(solution, "<solution>", "exec"), namespace)
        answer = lambda args: namespace[entry](*copy.deepcopy(args))  # noqa: E731

    # Distinct inputs; the public tests and the private tests each have two
    # different answers at least, so a constant program (the example's answer
    # hard-coded, say) fails both: while a block does not, its last test is
    # replaced by a new draw.
    rng, seen = random.Random(f"{fam.name}-{i}"), set()

    def draw(n: int) -> list:
        cases = []
        for _ in range(1000):
            if len(cases) == n:
                if len({repr(want) for _, want in cases}) > 1:
                    return cases
                cases.pop()
            x = gen(rng, p)
            if fam.style == "function" and not isinstance(x, tuple):
                x = (x,)
            if repr(x) not in seen:
                seen.add(repr(x))
                cases.append((x, answer(x)))
        raise RuntimeError(f"{fam.name}-{i}: the generator gives too few distinct inputs or answers")

    n_public = 2 + i % 2
    cases = draw(n_public) + draw(N_PRIVATE)

    if fam.style == "stdin":
        tests = [Test(input=x, output=want) for x, want in cases]
        x, want = cases[0]
        description = f"{text}\n\nExample\nInput\n{x}Output\n{want}\n{STDIN_FOOTER}"
    else:
        tests = [Test(check=check(entry, x, want)) for x, want in cases]
        x, want = cases[0]
        description = f"{text}\n\nExample: `{call(entry, x)}` returns `{want!r}`"
    return dict(name=f"{fam.name}-{i}", family=fam.name, split=split, description=description,
                public_tests=tests[:n_public], private_tests=tests[n_public:],
                time_limit=TIME_LIMIT, memory_limit_mb=MEMORY_MB, source="easy",
                difficulty=fam.difficulty, entry_point=entry, solution=solution)


def splits() -> dict[str, str]:
    """family name -> split, drawn as the module docstring says."""
    order = []
    for style in ("stdin", "function"):
        for difficulty in (1, 2, 3):
            stratum = sorted(f.name for f in FAMILIES if (f.style, f.difficulty) == (style, difficulty))
            random.Random(f"{SPLIT_SEED}-{style}-{difficulty}").shuffle(stratum)
            order += stratum
    return {name: CYCLE[j % len(CYCLE)] for j, name in enumerate(order)}


def instances(fam: Family) -> int:
    sizes = {len(values) for values in fam.vary.values()}
    if len(sizes) != 1:
        raise ValueError(f"{fam.name}: its parameter lists differ in length ({sorted(sizes)})")
    return sizes.pop()


def split_of_instance(family_split: str, i: int) -> str:
    """A training family's first N_TRAIN instances are easy:train, the others easy:seen."""
    return "seen" if family_split == "train" and i >= N_TRAIN else family_split


@functools.lru_cache(maxsize=1)
def _problems() -> tuple:
    """Version 1's problems first, in their order (so a split's first N problems,
    `--eval-limit N`, are what they were), then the instances version 2 added."""
    split_of = splits()
    order = [(fam, i) for fam in FAMILIES for i in range(N_TRAIN)]
    order += [(fam, i) for fam in FAMILIES for i in range(N_TRAIN, instances(fam))]
    return tuple(build(fam, i, split_of_instance(split_of[fam.name], i)) for fam, i in order)


def problems() -> list[dict]:
    """All problems (fresh dicts and test lists; the tests themselves are shared)."""
    return [dict(p, public_tests=list(p["public_tests"]), private_tests=list(p["private_tests"]))
            for p in _problems()]


if __name__ == "__main__":
    split_of, counts = splits(), collections.Counter(p["split"] for p in problems())
    print(f"easy set version {VERSION}: {sum(counts.values())} problems")
    for split in ("train", "valid", "test"):
        fams = [f for f in FAMILIES if split_of[f.name] == split]
        print(f"{split}: {len(fams)} families, {counts[split]} problems"
              + (f"; easy:seen: their other {counts['seen']} instances" if split == "train" else ""))
        for f in sorted(fams, key=lambda f: (f.style, f.difficulty, f.name)):
            print(f"  {f.name:22} {f.style:9} difficulty {f.difficulty}, {instances(f)} instances")
