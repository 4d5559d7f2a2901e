"""The prompt: one formatting function for training, evaluation and the chat app.

Keeping a single definition is the point: the original chat app sent the raw message without
this template and the model answered out of distribution.
"""

INSTRUCTION = (
    "Rewrite the given AI-generated text to make it sound more human-like, improving fluency, "
    "coherence, and naturalness while preserving the original meaning."
)

# The Alpaca template exactly as the reference run used it (Unsloth's alpaca_prompt).
ALPACA_TEMPLATE = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.

### Instruction:
{instruction}

### Input:
{input}

### Response:
{response}"""

RESPONSE_MARKER = "### Response:\n"


def format_prompt(ai_text: str, instruction: str = INSTRUCTION) -> str:
    """The prompt a model sees at generation time: everything up to the response."""
    return ALPACA_TEMPLATE.format(instruction=instruction, input=ai_text, response="")


def format_example(ai_text: str, human_text: str, eos_token: str, instruction: str = INSTRUCTION) -> str:
    """A full training example: prompt + human response + EOS.

    Without the EOS the fine-tuned model never learns to stop and rambles until max_new_tokens.
    """
    return format_prompt(ai_text, instruction) + human_text + eos_token


def extract_response(generated: str, eos_token: str | None = None) -> str:
    """The response part of a decoded generation: after the last response marker, before EOS."""
    text = generated.rsplit(RESPONSE_MARKER, 1)[-1] if RESPONSE_MARKER in generated else generated
    if eos_token and eos_token in text:
        text = text.split(eos_token, 1)[0]
    return text.strip()
