"""The built-in model on real paragraphs it never saw (``tests/data/real_paragraphs.json``):
it keeps to their words, seldom loops, and writes the format asked for (the length of restyles
whose sentences are long is its known weak point, measured by ``bench world``).

The model is the shipped one (the default config), built once (about ten minutes on two cores)
and cached under ``$ATTUNE_VAR_DIR/test-models`` (a changed config builds anew). ``bench world``
measures it on many more paragraphs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core import config
from core.world import faithfulness
from core.world.detectors import detect_style
from workers.modeling.style_lm import StyleLMConfig, ensure_style_lm, read_metadata, style_lm_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a first run builds the model
SHIPPED = StyleLMConfig()
REAL = json.loads((Path(__file__).parents[2] / "data" / "real_paragraphs.json").read_text())
STYLES = [
    {"length": "short", "format": "bullets", "tone": "casual"},
    {"length": "long", "format": "prose", "greeting": "yes"},
    {"length": "medium", "format": "bullets", "person": "second", "question": "yes"},
]


@pytest.fixture(scope="module")
def built_in_model():
    from workers.modeling.loader import load_base_model

    var = config.var_dir() / "test-models" / "shipped"
    built = style_lm_dir(var)
    recipe = json.loads(json.dumps(dataclasses.asdict(SHIPPED)))
    retrain = built.exists() and read_metadata(built).get("config") != recipe
    path = ensure_style_lm(SHIPPED, var=var, retrain=retrain, progress=False)
    return load_base_model(str(path), device="cpu")


def test_real_paragraphs_are_restyled_faithfully_in_the_style_asked(built_in_model) -> None:
    from workers.modeling.generation import GenerationRequest, generate_texts

    model, tokenizer = built_in_model
    cases = [(p, style) for p in REAL[:6] for style in STYLES]
    requests = [GenerationRequest("summarize", p, style) for p, style in cases]
    outputs = generate_texts(model, tokenizer, requests, max_new_tokens=400, batch_size=9)
    faithful = [faithfulness.faithfulness(o, p) for o, (p, _) in zip(outputs, cases, strict=True)]
    # Builds differ run to run (the tokenizer's merges, thread order): two v3 builds gave a mean
    # of 99.8% and 100% here (lowest 96.7% and 100%), with 0 and 1 of 18 outputs looping; v2
    # builds 92.6% and 96%; the model without the copy pointer scored 21%. A v4 build: 100%
    # (lowest 100%), no loop, every format right.
    assert sum(faithful) / len(faithful) >= 0.95, outputs
    assert min(faithful) >= 0.8, outputs
    assert sum(faithfulness.has_loop(o) for o in outputs) <= 2, outputs
    formats = [
        detect_style(o)["format"] == s["format"] for o, (_, s) in zip(outputs, cases, strict=True)
    ]
    assert sum(formats) >= len(cases) - 1, outputs
