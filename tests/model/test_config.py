from __future__ import annotations

import dataclasses

import pytest
import torch

from midilm import config as config_io
from midilm import vocab
from midilm.errors import ConfigError
from midilm.model import ARCHS, PRESETS, ModelConfig, build_model, count_parameters, flops_per_token, preset_config

NOTEBOOK_PARAMETERS = 8_215_374  # printed by the design notebook for MusicGPT(d256, 8 heads, 6 layers, 576 positions)


def meta_parameters(arch: str, preset: str) -> int:
    with torch.device("meta"):
        return count_parameters(build_model(preset_config(arch, preset)))


def test_seed_small_has_the_notebooks_parameter_count():
    assert meta_parameters("seed", "small") == NOTEBOOK_PARAMETERS
    assert preset_config("seed", "small").context_events == 72  # the notebook's 512 + 64 positions


def test_hier_small_is_about_the_notebooks_size():
    assert abs(meta_parameters("hier", "small") - NOTEBOOK_PARAMETERS) < 0.05 * NOTEBOOK_PARAMETERS


@pytest.mark.parametrize("arch", ARCHS)
def test_presets_grow_and_share_names(arch):
    counts = [meta_parameters(arch, preset) for preset in PRESETS]
    assert counts == sorted(counts)
    small = preset_config(arch, "small")
    assert (small.d_model, small.n_heads, small.n_layers) == (256, 8, 6)


def test_gpt_presets_reach_about_100m_parameters():
    assert 45e6 < meta_parameters("gpt", "base") < 55e6
    assert 90e6 < meta_parameters("gpt", "large") < 110e6


def test_gpt_tiny_parameter_count_by_hand():
    # tied embedding 3406*64, slot embedding 8*64, per layer: 2 norms (2*64),
    # qkv + proj (4*64*64), SwiGLU gate_up + down (3*64*192), final norm 64
    per_layer = 2 * 64 + 4 * 64 * 64 + 3 * 64 * 192
    expected = vocab.VOCAB_SIZE * 64 + 8 * 64 + 2 * per_layer + 64
    assert meta_parameters("gpt", "tiny") == expected == 325_312


def test_flops_per_token_by_hand():
    gpt = preset_config("gpt", "tiny")  # d64, 2 layers, d_ff 192
    assert flops_per_token(gpt, 32) == 6 * (2 * (4 * 64 * 64 + 3 * 64 * 192) + vocab.VOCAB_SIZE * 64) + 12 * 2 * 64 * 256
    seed = preset_config("seed", "tiny")  # d64, 2 layers, d_ff 256, two attentions per layer
    assert flops_per_token(seed, 32) == 6 * (2 * (8 * 64 * 64 + 2 * 64 * 256) + vocab.VOCAB_SIZE * 64) + 2 * 12 * 2 * 64 * 256
    hier = preset_config("hier", "tiny")  # event level as gpt over 32 events, 1 token layer over 8 positions
    event_level = 6 * 2 * (4 * 64 * 64 + 3 * 64 * 192) + 12 * 2 * 64 * 32
    token_level = 6 * (4 * 64 * 64 + 3 * 64 * 192 + vocab.VOCAB_SIZE * 64) + 12 * 64 * 8
    assert flops_per_token(hier, 32) == pytest.approx(event_level / 8 + token_level)


def test_resolved_fills_every_default_and_build_model_keeps_it():
    model = build_model(preset_config("hier", "tiny"))
    resolved = model.config
    assert (resolved.d_ff, resolved.token_layers, resolved.token_heads, resolved.token_d_ff) == (192, 1, 4, 192)
    assert preset_config("seed", "tiny").resolved().d_ff == 256
    assert resolved.resolved() == resolved


def test_config_round_trips_through_json_dicts():
    config = preset_config("hier", "small").resolved()
    assert config_io.from_dict(ModelConfig, config_io.to_dict(config)) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arch": "lstm"}, "unknown architecture 'lstm'"),
        ({"d_model": 100, "n_heads": 8}, "not divisible by n_heads=8"),
        ({"d_model": 24, "n_heads": 8}, "heads of even size"),
        ({"context_events": 1}, "at least 2 events"),
        ({"dropout": 1.0}, "dropout"),
        ({"vocab_size": 100}, "smaller than the v2 vocabulary"),
        ({"n_layers": 0}, "n_layers"),
        ({"d_ff": -1}, "d_ff"),
        ({"arch": "hier", "token_heads": 3}, "token_heads"),
    ],
)
def test_validate_names_the_setting(changes, message):
    config = dataclasses.replace(ModelConfig(), **changes)
    with pytest.raises(ConfigError, match=message):
        config.validate()
    with pytest.raises(ConfigError, match=message):
        build_model(config)


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_config("gpt", "huge")


def test_seed_accepts_odd_head_size():
    ModelConfig(arch="seed", d_model=24, n_heads=8).validate()
