"""How many tokens a prompt really takes and what room it leaves: the pure arithmetic of the agent runner's budget.

The context engine estimates 4 characters per token, which counts small models' tokenizers low (~23% for SmolLM2
on the daemon's prompts). Where the server can tokenize, the runner counts for real; where it cannot, it pads the
estimate by the worst real/estimated ratio seen on that server so far (from tokenizer counts or usage fields).
"""

from __future__ import annotations

import math

# What a chat template adds around each message (ChatML: `<|im_start|>role\n` ... `<|im_end|>\n` = 5) and once per
# prompt (BOS, the generation prompt `<|im_start|>assistant\n`); rounded up to cover other templates.
TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_PER_PROMPT = 8

# Padding for the estimate before the server's real counts have taught a better one.
DEFAULT_ESTIMATE_MARGIN = 1.5
MAX_ESTIMATE_MARGIN = 4.0
# A learnt ratio is the worst seen so far, not the worst there is: keep a little on top, and never trust a low one
# entirely (Ollama counts only the prompt tokens it did not have cached, which makes a ratio look small).
LEARNT_MARGIN_SLACK = 1.1
MIN_LEARNT_MARGIN = 1.15

# Rebuilds of a prompt that is too long, each with a proportionally smaller context; then it goes as it is.
FIT_ROUNDS = 4
# Aim a little below the room so that one rebuild usually suffices (budgets are spent in whole pieces).
SHRINK_AIM = 0.9

ANSWER_TOKENS_MAX = 512
ANSWER_TOKENS_MIN = 64


def templated_tokens(content_tokens: int, message_count: int) -> int:
    """The prompt's tokens once the chat template has wrapped `message_count` messages of `content_tokens`."""
    return content_tokens + TEMPLATE_TOKENS_PER_MESSAGE * message_count + TEMPLATE_TOKENS_PER_PROMPT


def padded(estimate: int, margin: float) -> int:
    """An estimate raised by the safety margin (never lowered)."""
    return math.ceil(estimate * max(1.0, margin))


def answer_room(agent_max: int | None, window: int) -> int:
    """Tokens the prompt must leave for the answer: the agent's own max_tokens, else a quarter of the window
    within [ANSWER_TOKENS_MIN, ANSWER_TOKENS_MAX]; never more than half the window, which the prompt keeps."""
    wanted = agent_max if agent_max is not None else min(ANSWER_TOKENS_MAX, max(ANSWER_TOKENS_MIN, window // 4))
    return min(wanted, window // 2)


def answer_token_limit(agent_max: int | None, window: int | None, prompt_tokens: int) -> int:
    """The request's max_tokens, never unset: what the window really leaves after the prompt, capped by the agent's
    own (else ANSWER_TOKENS_MAX), so a runaway answer ends at a known length instead of overflowing the context.
    A window too full for even ANSWER_TOKENS_MIN still gets that floor (a cut answer is retried, not stored)."""
    wanted = agent_max if agent_max is not None else ANSWER_TOKENS_MAX
    if window is None:
        return wanted
    return max(min(wanted, ANSWER_TOKENS_MIN), min(wanted, window - prompt_tokens))


def shrunk_context(context_tokens: int, prompt_tokens: int, prompt_room: int) -> int:
    """The smaller context to rebuild with when a prompt of `prompt_tokens` must fit `prompt_room`: the same
    proportion, aimed a little lower; always strictly smaller so the rebuild loop makes progress."""
    scaled = math.floor(context_tokens * max(0, prompt_room) / max(1, prompt_tokens) * SHRINK_AIM)
    return max(1, min(context_tokens - 1, scaled))


def observed_ratio(real_tokens: int, estimated_tokens: int) -> float | None:
    """real/estimated for one prompt; None when either is unknown (a server that reports no usage)."""
    if real_tokens <= 0 or estimated_tokens <= 0:
        return None
    return real_tokens / estimated_tokens


class EstimateMargins:
    """Per server, the largest real/estimated ratio seen: what an estimate is padded by when counting fails."""

    def __init__(self, default: float = DEFAULT_ESTIMATE_MARGIN) -> None:
        self.default = default
        self._learnt: dict[str, float] = {}

    def margin(self, server: str) -> float:
        learnt = self._learnt.get(server)
        if learnt is None:
            return self.default
        return min(MAX_ESTIMATE_MARGIN, max(MIN_LEARNT_MARGIN, learnt * LEARNT_MARGIN_SLACK))

    def observe(self, server: str, real_tokens: int, estimated_tokens: int) -> None:
        ratio = observed_ratio(real_tokens, estimated_tokens)
        if ratio is None:
            return
        # The first real figure replaces the default (which may be too generous); later ones only raise it.
        self._learnt[server] = max(self._learnt.get(server, 0.0), ratio)
