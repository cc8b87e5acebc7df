"""The engine and scheduler on a tiny style model: mixed batches give each row exactly what it
would get alone; sampling, stop strings, lengths and streaming are per row."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from workers.serving.engine import Row, RowEvent
from workers.serving.lora import LoraWeights
from workers.serving.scheduler import Scheduler

PROMPT = "<task=summarize><context>The council met on Monday and approved the tram line.<response>"


def random_lora(engine, seed: int, rank: int = 4, scale: float = 0.5) -> LoraWeights:
    g = torch.Generator().manual_seed(seed)
    return LoraWeights(
        {
            name: (
                torch.randn(rank, layer.in_features, generator=g) * scale,
                torch.randn(layer.out_features, rank, generator=g) * scale,
            )
            for name, layer in engine.runtime.linears.items()
        }
    )


def prompt_ids(engine) -> list[int]:
    return engine.tokenizer(PROMPT)["input_ids"]


def run(engine, loras, **kwargs) -> list[Row]:
    rows = [
        Row(prompt_ids=prompt_ids(engine), lora=lora, max_tokens=kwargs.pop("max_tokens", 24),
            temperature=kwargs.get("temperature", 0.0), **{k: v for k, v in kwargs.items()
                                                          if k != "temperature"})
        for lora in loras
    ]  # fmt: skip
    engine.run(rows)
    return rows


def test_a_mixed_batch_gives_each_row_its_own_adapter(engine):
    a, b = random_lora(engine, 1), random_lora(engine, 2)
    alone = {name: run(engine, [lora])[0] for name, lora in {"a": a, "b": b, "base": None}.items()}
    assert engine.last_mode == "base"
    assert len({r.text for r in alone.values()}) == 3  # the adapters really change the output
    mixed = run(engine, [a, None, b, a])
    assert engine.last_mode == "stacked"
    assert [r.text for r in mixed] == [alone["a"].text, alone["base"].text, alone["b"].text,
                                       alone["a"].text]  # fmt: skip


def test_sampling_is_per_row_and_seeded(engine):
    first = run(engine, [None], temperature=1.0, seed=7, top_p=0.9)[0]
    again = run(engine, [random_lora(engine, 3), None], temperature=1.0, seed=7, top_p=0.9)[1]
    assert first.text == again.text  # the same seed whatever shares the batch
    others = {run(engine, [None], temperature=1.0, seed=s)[0].text for s in range(4)}
    assert len(others) > 1
    greedy = run(engine, [None])[0].text
    assert run(engine, [None], temperature=1.0, top_p=0.0, seed=1)[0].text == greedy


def test_stop_strings_lengths_and_streaming(engine):
    sampled = {"temperature": 1.0, "seed": 5, "max_tokens": 40}
    free = run(engine, [None], **sampled)[0]
    assert len(free.text) > 20, free.text
    stop = free.text[len(free.text) // 2 : len(free.text) // 2 + 2]
    events: list[RowEvent] = []
    row = run(engine, [None], stop=(stop,), stream=True, sink=events.append, **sampled)[0]
    assert row.finish_reason == "stop"
    assert row.text == free.text[: free.text.find(stop)].rstrip()
    deltas = "".join(e.text for e in events if e.kind == "delta")
    assert deltas == row.text and events[-1].kind == "done" and events[-1].text == row.text
    short = run(engine, [None], max_tokens=3)[0]
    if short.finish_reason == "length":  # unless the model ends on its own first
        assert len(short.tokens) == 3


def test_scheduler_batches_concurrent_requests_and_cancels(engine):
    scheduler = Scheduler(engine, max_batch=4, max_wait_ms=300)
    try:
        done = threading.Event()
        results: dict[int, RowEvent] = {}

        def sink(i: int):
            def put(event: RowEvent) -> None:
                if event.kind == "done":
                    results[i] = event
                    if len(results) == 3:
                        done.set()

            return put

        rows = [
            Row(prompt_ids=prompt_ids(engine), lora=lora, max_tokens=8, temperature=0.0,
                sink=sink(i))
            for i, lora in enumerate([random_lora(engine, 1), None, random_lora(engine, 2)])
        ]  # fmt: skip
        threads = [threading.Thread(target=scheduler.submit, args=([r],)) for r in rows]
        for t in threads:
            t.start()
        assert done.wait(60)
        assert scheduler.stats.largest == 3 and scheduler.stats.batches == 1
        cancelled = Row(prompt_ids=prompt_ids(engine), lora=None, max_tokens=400, temperature=0.0)
        cancelled.cancelled.set()
        scheduler.submit([cancelled])
        time.sleep(0.5)
        assert cancelled.tokens == []  # never generated
    finally:
        scheduler.close()


@pytest.mark.parametrize("batch", [1, 3])
def test_context_window_is_known(engine, batch):
    assert engine.context_length == 512
    rows = run(engine, [None] * batch, max_tokens=2)
    assert all(r.done for r in rows)


def test_a_request_that_names_no_temperature_gets_the_models_own(engine) -> None:
    from transformers import GenerationConfig

    from tests.workers.adapters.helpers import tiny_llama
    from workers.serving.engine import sampling_defaults

    assert engine.sampling_defaults == (0.0, 1.0)  # the built-in model decodes greedily
    plain = tiny_llama()
    assert sampling_defaults(plain) == (1.0, 1.0)  # no preference of its own: OpenAI's
    plain.generation_config = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8)
    assert sampling_defaults(plain) == (0.7, 0.8)  # as Qwen2.5-Instruct's generation config


def test_candidates_of_a_greedy_model_are_sampled_unless_the_request_says() -> None:
    from core.serving import GenerationParams
    from workers.serving.service import sampling

    greedy = (0.0, 1.0)
    assert sampling(GenerationParams(), greedy) == (0.0, 1.0)
    assert sampling(GenerationParams(n=2), greedy) == (1.0, 1.0)  # two texts to choose from
    assert sampling(GenerationParams(n=2, temperature=0.0), greedy) == (0.0, 1.0)  # as asked
    assert sampling(GenerationParams(temperature=0.3, top_p=0.9), greedy) == (0.3, 0.9)
    assert sampling(GenerationParams(n=2), (0.7, 0.8)) == (0.7, 0.8)  # the model's own
