"""The vLLM engine's mapping onto GenerationResult, against a stand-in ``vllm`` module (vLLM needs a
CUDA build this machine lacks): responses cut at EOS and at a new Alpaca block, hit_limit from the
finish reason, the adapter passed per request only when asked, prompts in order."""

import sys
import types

import pytest

EOS = 7


class Tokenizer:
    eos_token_id = EOS

    def decode(self, ids, skip_special_tokens=True):
        words = {1: "Plain", 2: "answer.", 3: "\n### Instruction:", 4: "more", EOS: "<eos>"}
        return " ".join(words[i] for i in ids if not (skip_special_tokens and i == EOS))


@pytest.fixture
def fake_vllm(monkeypatch):
    calls = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def get_tokenizer(self):
            return Tokenizer()

        def generate(self, prompts, params, lora_request=None, use_tqdm=True):
            calls["generate"] = dict(prompts=prompts, params=params, lora=lora_request)
            done = {"stops": ([1, 2, EOS], "stop"), "runs on": ([1, 2, 4, 4], "length"), "template": ([1, 3, 4], "stop")}
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=done[p][0], finish_reason=done[p][1])])
                    for p in prompts]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, idx, path: ("lora", name, idx, path)
    for name, module in (("vllm", vllm), ("vllm.lora", types.ModuleType("vllm.lora")), ("vllm.lora.request", lora)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_vllm_engine_maps_outputs_like_generate(fake_vllm, tmp_path):
    from ai2human.evaluate.gen_vllm import VllmEngine

    engine = VllmEngine("base-model", adapter_dir=tmp_path, max_seq_length=1024)
    assert fake_vllm["init"]["enable_lora"] and fake_vllm["init"]["quantization"] == "bitsandbytes"
    result = engine.generate(["stops", "runs on", "template"], max_new_tokens=4, temperature=0.7, top_p=0.9, seed=3)
    assert result.texts == ["Plain answer.", "Plain answer. more more", "Plain"]
    assert result.hit_limit == [False, True, False]
    # Up to and including the EOS, as generate counts, whether or not vLLM returns the EOS id itself.
    assert result.new_tokens == [3, 4, 4] and result.token_ids[0] == [1, 2]
    assert fake_vllm["generate"]["lora"] == ("lora", "adapter", 1, str(tmp_path))
    assert fake_vllm["generate"]["params"]["stop_token_ids"] == [EOS] and result.settings["engine"] == "vllm"
    engine.generate(["stops"], max_new_tokens=4, adapter=False)
    assert fake_vllm["generate"]["lora"] is None  # the base model: adapter off for that call
    assert engine.generate([], max_new_tokens=4).texts == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.generate(["stops"], max_new_tokens=0)
