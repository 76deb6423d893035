"""SkyTNT's checkpoints load as midilm models: the oracle's logits, any shape, Lightning files, refusals, unoptimised tokens."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import midilm
from midilm import vocab
from midilm.errors import CheckpointError, ConfigError
from midilm.hub import skytnt_layout
from midilm.model import ModelConfig, build_model, make_decoder
from midilm.sample.prompt import load_prompt
from midilm.tokenizer import TokenizerOptions, tokenize
from midilm.train import load_for_inference

from .conftest import teacher_forced

ATOL = 1e-4


def test_the_oracle_folder_gives_skytnts_hidden_states_logits_and_loss(skytnt_model: Path, oracle: dict) -> None:
    model = midilm.load_model(skytnt_model)
    assert not model.training and model.config.arch == "skytnt"
    tokens = oracle["tokens"]
    with torch.no_grad():
        torch.testing.assert_close(model.encode_events(tokens[:, :-1]), oracle["hidden"], rtol=0, atol=ATOL)
    logits = teacher_forced(model, tokens)
    torch.testing.assert_close(logits, oracle["logits"], rtol=0, atol=ATOL)
    loss = F.cross_entropy(logits.reshape(-1, vocab.VOCAB_SIZE), tokens[:, 1:].reshape(-1), ignore_index=vocab.PAD)
    assert loss.item() == pytest.approx(oracle["loss"].item(), abs=1e-5)


def test_the_oracle_adapter_gives_skytnts_logits(skytnt_model: Path, skytnt_lora: Path, oracle: dict) -> None:
    model = midilm.load_model(skytnt_model, adapter=skytnt_lora)
    torch.testing.assert_close(teacher_forced(model, oracle["tokens"]), oracle["logits_lora"], rtol=0, atol=ATOL)


def test_the_config_is_read_not_assumed(skytnt_model: Path) -> None:
    config = load_for_inference(skytnt_model).run.model
    # the token decoder's heads are 32 wide (64 / 2), the event level's 8: read from each stack's config
    assert (config.d_model, config.n_heads, config.n_layers, config.d_ff, config.head_dim) == (64, 8, 8, 128, 8)
    assert (config.token_layers, config.token_heads, config.token_d_ff, config.token_head_dim) == (2, 2, 32, 32)
    assert (config.norm_eps, config.rope_base, config.context_events) == (1e-6, 10000.0, 4096)


# ----- any shape: a plain LLaMA written out here is the reference ------------------------------------


def plain_stack(
    state: dict, prefix: str, x: torch.Tensor, heads: int, kv_heads: int, head_dim: int, eps: float, theta: float
) -> torch.Tensor:
    """transformers' LlamaModel.forward(inputs_embeds=x) spelled out: rotate_half rotary, repeated key/value heads."""

    def norm(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps))

    def rotate(t: torch.Tensor) -> torch.Tensor:
        half = t.shape[-1] // 2
        return t * cos + torch.cat((-t[..., half:], t[..., :half]), -1) * sin

    batch, length, _ = x.shape
    angles = torch.outer(torch.arange(length).float(), 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    layer = 0
    while f"{prefix}.layers.{layer}.input_layernorm.weight" in state:
        p = f"{prefix}.layers.{layer}."
        h = norm(x, state[p + "input_layernorm.weight"])
        q = (h @ state[p + "self_attn.q_proj.weight"].T).view(batch, length, heads, head_dim).transpose(1, 2)
        k = (h @ state[p + "self_attn.k_proj.weight"].T).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        v = (h @ state[p + "self_attn.v_proj.weight"].T).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        q, k = rotate(q), rotate(k)
        k, v = k.repeat_interleave(heads // kv_heads, 1), v.repeat_interleave(heads // kv_heads, 1)
        weights = (q @ k.transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + (weights @ v).transpose(1, 2).reshape(batch, length, heads * head_dim) @ state[p + "self_attn.o_proj.weight"].T
        h = norm(x, state[p + "post_attention_layernorm.weight"])
        x = (
            x
            + (F.silu(h @ state[p + "mlp.gate_proj.weight"].T) * (h @ state[p + "mlp.up_proj.weight"].T))
            @ state[p + "mlp.down_proj.weight"].T
        )
        layer += 1
    return norm(x, state[f"{prefix}.norm.weight"])


def plain_skytnt_logits(folder: Path, tokens: torch.Tensor) -> torch.Tensor:
    """SkyTNT's validation_step for any config, from the folder's own config.json and weights."""
    config = json.loads((folder / "config.json").read_text())
    state = skytnt_layout.read_state_dict(folder / "model.safetensors")
    state = {k: v.double() for k, v in state.items()}

    def stack(name: str, x: torch.Tensor) -> torch.Tensor:
        c = config[name]
        return plain_stack(
            state,
            name.removesuffix("_config"),
            x,
            c["num_attention_heads"],
            c["num_key_value_heads"],
            c["head_dim"],
            c["rms_norm_eps"],
            c["rope_theta"],
        )

    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    hidden = stack("net_config", state["net.embed_tokens.weight"][inputs].sum(-2))  # (B, N, d)
    batch, n, d = hidden.shape
    token_inputs = torch.cat(
        (hidden.reshape(-1, 1, d), state["net_token.embed_tokens.weight"][targets[..., :-1].reshape(batch * n, -1)]), 1
    )
    return (stack("net_token_config", token_inputs) @ state["lm_head.weight"].T).view(batch, n, vocab.EVENT_LEN, -1)


SHAPES = [
    # grouped-query attention, heads narrower than d_model / n_heads, other eps and rotary bases per stack
    {"d_model": 48, "n_heads": 4, "kv_heads": 2, "head_dim": 8, "n_layers": 3, "d_ff": 80, "token_heads": 2, "token_kv_heads": 1,
     "token_head_dim": 12, "token_layers": 2, "token_d_ff": 24, "norm_eps": 1e-5, "rope_base": 20000.0, "token_rope_base": 500.0},
    {"d_model": 32, "n_heads": 2, "n_layers": 1, "d_ff": 64, "token_heads": 4, "token_layers": 1, "token_d_ff": 16},
]  # fmt: skip


def random_skytnt(tmp_path: Path, dtype: torch.dtype = torch.float32, **sizes: object) -> tuple[torch.nn.Module, Path]:
    """A skytnt model of any shape with every weight random (norms included), saved in SkyTNT's layout."""
    torch.manual_seed(7)
    model = build_model(ModelConfig(arch="skytnt", context_events=32, dropout=0.0, **sizes)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    skytnt_layout.write_folder(tmp_path / "skytnt", model, optimise_midi=True, dtype=dtype)
    return model, tmp_path / "skytnt"


@pytest.mark.parametrize("sizes", SHAPES, ids=["gqa", "plain"])
def test_any_shape_in_skytnts_layout_gives_llamas_logits(tmp_path: Path, oracle: dict, sizes: dict) -> None:
    _, folder = random_skytnt(tmp_path, **sizes)
    model = midilm.load_model(folder)
    tokens = oracle["tokens"]
    expected = plain_skytnt_logits(folder, tokens).float()
    torch.testing.assert_close(teacher_forced(model, tokens), expected, rtol=0, atol=ATOL)


def test_the_plain_reference_reproduces_the_oracle(skytnt_model: Path, oracle: dict) -> None:
    """The reference above is itself checked against SkyTNT's code (head_dim, kv heads filled as LlamaConfig does)."""
    torch.testing.assert_close(plain_skytnt_logits(skytnt_model, oracle["tokens"]).float(), oracle["logits"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("sizes", SHAPES[:1], ids=["gqa"])
def test_cached_decoding_equals_the_reference_with_grouped_heads(tmp_path: Path, oracle: dict, sizes: dict) -> None:
    model, _ = random_skytnt(tmp_path, **{**sizes})
    model.config.context_events = 6  # the window slides several times over 15 events
    prompt, tokens = oracle["tokens"][:, :3], oracle["tokens"][:, 3:].reshape(2, -1)[:, :70]
    decoders = [make_decoder(model, 2, cache=False), make_decoder(model, 2)]
    for decoder in decoders:
        decoder.prefill(prompt)
    for token in tokens.T:
        torch.testing.assert_close(decoders[1].logits(), decoders[0].logits(), rtol=0, atol=ATOL)
        for decoder in decoders:
            decoder.push(token)
    assert decoders[1].window_start == decoders[0].window_start > 0


def test_bfloat16_weights_load_as_they_are_stored(tmp_path: Path, oracle: dict) -> None:
    original, folder = random_skytnt(tmp_path, torch.bfloat16, **SHAPES[1])
    model = midilm.load_model(folder)
    for name, value in model.state_dict().items():
        assert torch.equal(value, original.state_dict()[name].to(torch.bfloat16).float()), name


# ----- older releases and refusals -----------------------------------------------------------------


def test_a_lightning_checkpoint_beside_its_config_loads(tmp_path: Path, skytnt_model: Path, oracle: dict) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    config = json.loads((skytnt_model / "config.json").read_text())
    config["torch_dtype"] = config.pop("dtype")  # written by an older transformers: no head_dim either
    for stack in ("net_config", "net_token_config"):
        del config[stack]["head_dim"]
    (folder / "config.json").write_text(json.dumps(config))
    state = skytnt_layout.read_state_dict(skytnt_model / "model.safetensors")
    state["net.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # a buffer older transformers saved
    torch.save({"epoch": 3, "global_step": 1200, "state_dict": state, "loops": {"fit_loop": {}}}, folder / "epoch=3.ckpt")
    for source in (folder / "epoch=3.ckpt", folder):
        torch.testing.assert_close(teacher_forced(midilm.load_model(source), oracle["tokens"]), oracle["logits"], rtol=0, atol=ATOL)


def edited_copy(tmp_path: Path, skytnt_model: Path, edit) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(skytnt_model, folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["tokenizer"].update(version="v1"), "tokenizer version 'v1': midilm reads SkyTNT's v2 tokens only"),
        (lambda c: c["net_config"].update(rope_scaling={"rope_type": "linear", "factor": 2.0}), "rope_scaling"),
        (lambda c: c["net_config"].update(hidden_act="gelu"), "hidden_act 'gelu'"),
        (lambda c: c["net_token_config"].update(rms_norm_eps=1e-5), "rms_norm_eps differs between net_config"),
        (lambda c: c["net_config"].update(num_hidden_layers=9), "weights do not fit the config"),
        (lambda c: c["net_config"].update(intermediate_size=96), "weight shapes do not fit the config"),
        (lambda c: c["tokenizer"]["event_parameters"].update(pitch=100), "tokenizer event_parameters"),
    ],
    ids=["v1", "rope-scaling", "activation", "eps", "layers", "mlp", "vocabulary"],
)
def test_what_midilm_does_not_implement_is_refused_by_name(tmp_path: Path, skytnt_model: Path, edit, message: str) -> None:
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(")):
        load_for_inference(edited_copy(tmp_path, skytnt_model, edit))


# ----- optimise_midi false: unoptimised tokens everywhere --------------------------------------------


def test_an_unoptimised_model_reads_prompts_and_stores_without_optimise(
    tmp_path: Path, skytnt_model: Path, golden_dir: Path, raw_store: Path, chorale_store: Path
) -> None:
    folder = edited_copy(tmp_path, skytnt_model, lambda c: c["tokenizer"].update(optimise_midi=False))
    loaded = load_for_inference(folder)
    assert loaded.run.data.tokenizer == TokenizerOptions(optimise=False).spec()
    prompt_file = golden_dir / "bach_bwv1.6.mid"
    prompt = load_prompt(prompt_file, loaded.run.data.tokenizer, events=12)
    assert (prompt == tokenize(prompt_file, TokenizerOptions(optimise=False)).tokens[:13]).all()
    assert not (prompt == tokenize(prompt_file).tokens[:13]).all()  # the optimised tokens differ for this file
    result = midilm.evaluate_checkpoint(folder, raw_store, samples=0, window_events=16, batch_size=4)
    assert result["likelihood"]["tokens"] > 0
    with pytest.raises(ConfigError, match="tokenized with other options"):
        midilm.evaluate_checkpoint(folder, chorale_store, samples=0, window_events=16)
    train = midilm.TrainConfig(window_events=8, batch_size=2, max_steps=1, eval_batches=1, lora=2)
    with pytest.raises(ConfigError, match="other tokenizer options than the store"):
        midilm.start_run(chorale_store, tmp_path / "run", None, train, init=folder)


def test_sampling_runs_the_token_level_one_token_at_a_time(skytnt_model: Path, oracle: dict) -> None:
    """Within an event the cached decoder feeds the token level only the newest token (as SkyTNT's generate does)."""
    model = midilm.load_model(skytnt_model)
    positions: list[int] = []
    forward = model.net_token.forward
    model.net_token.forward = lambda x, cache=None: (positions.append(x.size(1)), forward(x, cache))[1]
    decoder = make_decoder(model, 2)
    decoder.prefill(oracle["tokens"][:, :3])
    for token in oracle["tokens"][:, 3:5].reshape(2, -1).T:
        decoder.push(token)
    assert positions == [1] * 17  # the state of each new event, then one token per push
