"""Hugging Face parity: random-init transformers models, converted both ways."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from electra_keras.conversion.hf import ConversionError, convert_hf_to_keras, save_hf  # noqa: E402

CONFIG = dict(
    vocab_size=50,
    embedding_size=8,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=20,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _inputs(seed=0):
    """Two segments and padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 50, size=(3, 12)).astype("int64")
    segments = np.zeros_like(ids)
    segments[:, 6:] = 1
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    segments[mask == 0] = 0
    return ids, segments, mask


def _keras_inputs(ids, segments, mask):
    return {
        "token_ids": ids.astype("int32"),
        "segment_ids": segments.astype("int32"),
        "padding_mask": mask.astype("int32"),
    }


def _torch(*arrays):
    return [torch.tensor(a) for a in arrays]


@pytest.fixture
def hf_discriminator(tmp_path):
    torch.manual_seed(0)
    model = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(**CONFIG)
    ).eval()
    model.save_pretrained(tmp_path / "disc")
    return model, str(tmp_path / "disc")


def test_discriminator_logits_and_hidden_states_match(hf_discriminator):
    hf, path = hf_discriminator
    model, report = convert_hf_to_keras(path)
    assert type(model).__name__ == "ElectraDiscriminator"
    ids, segments, mask = _inputs()
    t_ids, t_seg, t_mask = _torch(ids, segments, mask)
    with torch.no_grad():
        out = hf(
            input_ids=t_ids,
            token_type_ids=t_seg,
            attention_mask=t_mask,
            output_hidden_states=True,
        )
    logits = np.asarray(model(_keras_inputs(ids, segments, mask)))
    real = mask.astype(bool)
    np.testing.assert_allclose(logits[real], out.logits.numpy()[real], atol=1e-4)
    hidden = np.asarray(model.backbone(_keras_inputs(ids, segments, mask)))
    np.testing.assert_allclose(
        hidden[real], out.hidden_states[-1].numpy()[real], atol=1e-4
    )
    assert not [k for k, why in report.skipped.items() if "unexpected" in why]


def test_generator_logits_at_masked_positions_match(tmp_path):
    torch.manual_seed(1)
    hf = transformers.ElectraForMaskedLM(transformers.ElectraConfig(**CONFIG)).eval()
    hf.save_pretrained(tmp_path / "gen")
    model, report = convert_hf_to_keras(str(tmp_path / "gen"), kind="generator")
    ids, segments, mask = _inputs(1)
    positions = np.array([[1, 3, 7], [2, 4, 8], [1, 2, 3]], "int32")
    with torch.no_grad():
        out = hf(
            input_ids=torch.tensor(ids),
            token_type_ids=torch.tensor(segments),
            attention_mask=torch.tensor(mask),
        )
    expected = np.take_along_axis(
        out.logits.numpy(), positions[..., None].astype("int64"), axis=1
    )
    got = np.asarray(
        model({**_keras_inputs(ids, segments, mask), "mask_positions": positions})
    )
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert any("tied" in n for n in report.notices + list(report.skipped.values()))
    assert len(report.mapped) == len(model.weights)  # every variable filled


def test_round_trip_ours_to_hf_to_ours(hf_discriminator, tmp_path):
    _, path = hf_discriminator
    model, _ = convert_hf_to_keras(path)
    save_hf(model, str(tmp_path / "out"))
    reloaded = transformers.ElectraForPreTraining.from_pretrained(
        str(tmp_path / "out"), output_loading_info=True
    )
    hf_model, info = reloaded
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    again, _ = convert_hf_to_keras(str(tmp_path / "out"))
    ids, segments, mask = _inputs(2)
    inputs = _keras_inputs(ids, segments, mask)
    np.testing.assert_allclose(
        np.asarray(again(inputs)), np.asarray(model(inputs)), atol=1e-6
    )


def test_backbone_from_bert_ignores_the_pooler(tmp_path):
    torch.manual_seed(2)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=20,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf = transformers.BertModel(config).eval()
    hf.save_pretrained(tmp_path / "bert")
    model, report = convert_hf_to_keras(str(tmp_path / "bert"))
    assert type(model).__name__ == "ElectraBackbone"
    assert any("pooler" in k for k in report.skipped)
    ids, segments, mask = _inputs(3)
    with torch.no_grad():
        out = hf(
            input_ids=torch.tensor(ids),
            token_type_ids=torch.tensor(segments),
            attention_mask=torch.tensor(mask),
        )
    got = np.asarray(model(_keras_inputs(ids, segments, mask)))
    real = mask.astype(bool)
    np.testing.assert_allclose(
        got[real], out.last_hidden_state.numpy()[real], atol=1e-4
    )


def test_unsupported_config_is_refused(hf_discriminator):
    import json
    import os

    _, path = hf_discriminator
    config_path = os.path.join(path, "config.json")
    config = json.load(open(config_path))
    config["position_embedding_type"] = "relative_key"
    json.dump(config, open(config_path, "w"))
    with pytest.raises(ConversionError, match="position_embedding_type"):
        convert_hf_to_keras(path)


def test_wrong_kind_is_refused(hf_discriminator):
    _, path = hf_discriminator
    with pytest.raises(
        ConversionError, match="discriminator checkpoint, not a generator"
    ):
        convert_hf_to_keras(path, kind="generator")


def test_convert_command_both_ways(hf_discriminator, tmp_path, capsys):
    from electra_keras.cli import main

    _, path = hf_discriminator
    keras_path = str(tmp_path / "discriminator.keras")
    assert main(["convert", "--from", "hf", path, "--to", keras_path]) == 0
    assert "mapped" in capsys.readouterr().out
    assert (
        main(["convert", "--from", keras_path, "--to", "hf", str(tmp_path / "hf_out")])
        == 0
    )
    model = transformers.ElectraForPreTraining.from_pretrained(str(tmp_path / "hf_out"))
    assert model.config.embedding_size == 8
    assert main(["convert", "--from", "hf", "x", "--to", "tf1", "y"]) == 2
    assert "not supported" in capsys.readouterr().err


def test_converted_discriminator_fine_tunes(hf_discriminator, tmp_path):
    import keras

    from electra_keras.models.classifier import ElectraClassifier
    from electra_keras.models.classifier_preprocessor import (
        ElectraClassifierPreprocessor,
    )

    _, path = hf_discriminator
    model, _ = convert_hf_to_keras(path)
    model.save(tmp_path / "discriminator.keras")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
        f"w{i}" for i in range(45)
    ]
    preprocessor = ElectraClassifierPreprocessor(vocab, seq_len=12)
    classifier = ElectraClassifier.from_pretrained(
        str(tmp_path / "discriminator.keras"), 2, preprocessor=preprocessor
    )
    np.testing.assert_array_equal(
        classifier.backbone.token_embedding.embeddings.numpy(),
        model.backbone.token_embedding.embeddings.numpy(),
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    texts = ["w1 w2 w3", "w4 w5", "w6", "w7 w8"] * 4
    x = preprocessor.preprocess_texts(texts)
    history = classifier.fit(x, np.array([0, 1, 0, 1] * 4), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
