"""Batched generation on the offline tiny model: same answers as one at a time, EOS and limits right."""

import pytest

from ai2human.evaluate.generation import GenerationResult, cut_at_template, generate
from ai2human.models.hardware import choose_backend, detect_hardware
from ai2human.models.loading import load_for_inference
from ai2human.data.prompts import format_prompt
from ai2human.models.tiny import TINY_MODEL_NAME

AI_TEXTS = [
    "Moreover, this approach underscores the importance of balance.",
    "In today's fast-paced world, technology plays a crucial role in our daily lives and shapes how we learn.",
    "Short one.",
    "Ultimately, the journey is as meaningful as the destination itself, and we must embrace it.",
    "Consequently, we must harness these insights.",
]


@pytest.fixture(scope="module")
def tiny():
    choice = choose_backend("auto", detect_hardware(), load_in_4bit=False)
    return load_for_inference(TINY_MODEL_NAME, choice, max_seq_length=512)


@pytest.fixture(scope="module")
def prompts():
    return [format_prompt(t) for t in AI_TEXTS]


class ForceEosOnFirstRow:
    """A logits processor that makes row 0 emit EOS at its third new token and never lets others stop."""

    def __init__(self, eos_id, prompt_len):
        self.eos_id, self.prompt_len = eos_id, prompt_len

    def __call__(self, input_ids, scores):
        scores[:, self.eos_id] = -float("inf")
        if input_ids.shape[1] - self.prompt_len == 2:
            scores[0, :] = -float("inf")
            scores[0, self.eos_id] = 0.0
        return scores


def test_batched_greedy_matches_one_at_a_time(tiny, prompts):
    model, tokenizer = tiny
    batched = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=4, engine="plain")
    single = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=1, engine="plain")
    # Left padding and the attention mask must not change any answer, nor their order.
    assert batched.texts == single.texts
    assert batched.new_tokens == single.new_tokens
    assert len(batched.texts) == len(prompts)


def test_response_only_and_counts(tiny, prompts):
    model, tokenizer = tiny
    result = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=8, min_new_tokens=6)
    assert isinstance(result, GenerationResult)
    assert all("### Instruction" not in t and "Rewrite the given" not in t for t in result.texts)
    assert result.new_tokens == [6] * len(prompts)
    assert result.hit_limit == [True] * len(prompts)  # no EOS within the limit: truncated
    assert result.seconds > 0
    assert result.tokens_per_second == pytest.approx(sum(result.new_tokens) / result.seconds)
    summary = result.summary()
    assert summary["new_tokens"] == 6 * len(prompts) and summary["tokens_per_second"] > 0


def test_eos_stops_one_row_and_is_not_decoded(tiny):
    from transformers import LogitsProcessorList

    model, tokenizer = tiny
    # Two prompts of the same token length, so row 0 of the (only) batch is the first prompt.
    prompts = [format_prompt("alpha beta"), format_prompt("alpha beta")]
    prompt_len = len(tokenizer(prompts[0], add_special_tokens=False)["input_ids"])
    processor = ForceEosOnFirstRow(tokenizer.eos_token_id, prompt_len)
    result = generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=2, engine="plain",
                      logits_processor=LogitsProcessorList([processor]))
    assert result.new_tokens[0] == 3  # two tokens and the EOS
    assert result.hit_limit == [False, True]
    assert result.new_tokens[1] == 8
    assert tokenizer.eos_token not in result.texts[0]
    assert len(tokenizer(result.texts[0], add_special_tokens=False)["input_ids"]) <= 3


def test_padding_side_restored_even_on_error(tiny, prompts):
    model, tokenizer = tiny
    tokenizer.padding_side = "right"
    generate(model, tokenizer, prompts[:2], max_new_tokens=2, batch_size=2)
    assert tokenizer.padding_side == "right"
    with pytest.raises(ValueError, match="not_a_generate_argument"):
        generate(model, tokenizer, prompts[:2], max_new_tokens=2, batch_size=2, not_a_generate_argument=object())
    assert tokenizer.padding_side == "right"


def test_sampling_is_reproducible_with_seed(tiny, prompts):
    model, tokenizer = tiny
    kwargs = dict(max_new_tokens=10, temperature=0.9, top_p=0.95, batch_size=2)
    first = generate(model, tokenizer, prompts, seed=7, **kwargs)
    again = generate(model, tokenizer, prompts, seed=7, **kwargs)
    other = generate(model, tokenizer, prompts, seed=8, **kwargs)
    assert first.texts == again.texts
    assert first.texts != other.texts


def test_bad_arguments_are_refused(tiny, prompts):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="batch_size"):
        generate(model, tokenizer, prompts, max_new_tokens=4, batch_size=-1)
    with pytest.raises(ValueError, match="engine"):
        generate(model, tokenizer, prompts, max_new_tokens=4, engine="warp")
    with pytest.raises(ValueError, match="Unsloth"):
        generate(model, tokenizer, prompts, max_new_tokens=4, engine="unsloth")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tokenizer, prompts, max_new_tokens=0)


def test_no_prompts_no_work(tiny):
    result = generate(*tiny, [], max_new_tokens=4)
    assert result.texts == [] and result.tokens_per_second == 0.0


def test_cut_at_template_drops_a_new_alpaca_block():
    text = "A plain answer.\n\n### Instruction:\nRewrite this\n\n### Response:\nmore"
    assert cut_at_template(text) == "A plain answer."
    assert cut_at_template("  no marker here  ") == "no marker here"


@pytest.mark.parametrize("batch_size", [0, 2])
def test_static_engine_matches_plain_token_for_token(tiny, prompts, batch_size):
    # The fast engine must not change a single greedy token, at the automatic batch or a small one
    # (several batches of different padded lengths), nor the order, counts or EOS handling.
    model, tokenizer = tiny
    plain = generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=batch_size, engine="plain")
    static = generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=batch_size, engine="static")
    assert static.settings["engine"] == "static" and plain.settings["engine"] == "plain"
    assert static.token_ids == plain.token_ids and all(static.token_ids)
    assert static.texts == plain.texts and static.new_tokens == plain.new_tokens and static.hit_limit == plain.hit_limit


def test_auto_engine_and_batch_on_cpu(tiny, prompts):
    model, tokenizer = tiny
    result = generate(model, tokenizer, prompts, max_new_tokens=4)
    assert result.settings["engine"] == "static" and result.settings["batch_auto"]
    assert result.batch_size == len(prompts)  # five prompts: one batch on a CPU
    assert result.settings["dequantize"] == "off"


@pytest.mark.parametrize("native", [True, False])
def test_packed_decode_attention_keeps_every_token(tiny, prompts, monkeypatch, native):
    # The tiny model shares 2 KV heads among 4 query heads, as Qwen2.5-7B shares 4 among 28. Without
    # transformers' own packing (native=False: transformers < 5.24) our backport decodes.
    from transformers.integrations import sdpa_attention

    from ai2human.evaluate import gen_attention

    if not native:  # as transformers 5.17: no packing of its own, KV heads copied out (repeat_kv)
        monkeypatch.setattr(gen_attention, "native_packing", lambda: False)
        monkeypatch.setattr(sdpa_attention, "is_torchdynamo_compiling", lambda: True, raising=False)
    calls = []
    original = gen_attention._packed_sdpa
    monkeypatch.setattr(gen_attention, "_packed_sdpa", lambda *a, **k: calls.append(a[1].shape[2]) or original(*a, **k))
    model, tokenizer = tiny
    kwargs = dict(max_new_tokens=12, batch_size=2, engine="static")
    packed = generate(model, tokenizer, prompts, packed_attention=True, **kwargs)
    assert packed.settings["packed_attention"] is True and 1 in calls  # decoding steps went through it
    assert model.config._attn_implementation == "sdpa"  # restored
    unpacked = generate(model, tokenizer, prompts, packed_attention=False, **kwargs)
    assert packed.token_ids == unpacked.token_ids


def test_out_of_memory_halves_the_batch_and_keeps_every_answer(tiny, prompts, monkeypatch):
    model, tokenizer = tiny
    expected = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=1, engine="plain")
    real, sizes = model.generate, []

    def tight(**kwargs):  # a GPU that holds two rows at most
        sizes.append(kwargs["input_ids"].shape[0])
        if sizes[-1] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    monkeypatch.setattr(model, "generate", tight)
    result = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=5, engine="plain")
    assert sizes == [5, 3, 2, 2, 1]  # 5 and 3 fail; then batches of at most 2
    assert result.token_ids == expected.token_ids and result.batch_size <= 2
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not retried
        monkeypatch.setattr(model, "generate", lambda **kw: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
        generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=5, engine="plain")


def test_batch_size_is_the_largest_batch_that_ran(tiny, prompts):
    model, tokenizer = tiny
    result = generate(model, tokenizer, prompts, max_new_tokens=2, batch_size=4, engine="plain")
    assert result.batch_size == 3  # five prompts at a batch of 4 run as 3 + 2
