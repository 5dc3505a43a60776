import os

import pytest

from electra_keras.serving.model_config import (
    ServedModelConfig,
    available_versions,
    format_model_config,
    load_model_config,
    parse_model_config,
    resolve_versions,
    version_directories,
)

CONFIG = """
model_config_list {
  config {
    name: "sentiment"
    base_path: "/models/sentiment"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 2 versions: 1 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config {
    name: "pairs"
    base_path: "relative/pairs"
    model_platform: "tensorflow"
    model_version_policy { all {} }
  }
  config { name: "plain" base_path: "/models/plain" model_platform: "tensorflow" }
}
"""


def _make_versions(base, versions, junk=("tmp", "3.bak")):
    for version in versions:
        os.makedirs(os.path.join(base, str(version)))
        open(os.path.join(base, str(version), "saved_model.pb"), "wb").close()
    for name in junk:
        os.makedirs(os.path.join(base, name))
    os.makedirs(os.path.join(base, "9"))  # no saved_model.pb: not a version


def test_parse_policies_labels_and_paths(tmp_path):
    configs = parse_model_config(CONFIG, base_dir=str(tmp_path))
    sentiment, pairs, plain = configs
    assert sentiment == ServedModelConfig(
        name="sentiment",
        base_path="/models/sentiment",
        policy="specific",
        versions=(1, 2),
        version_labels={"stable": 1, "canary": 2},
    )
    assert pairs.policy == "all"
    assert pairs.base_path == str(tmp_path / "relative" / "pairs")
    assert plain.policy == "latest" and plain.num_versions == 1


def test_relative_paths_default_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    assert load_model_config(str(path))[1].base_path == str(tmp_path / "relative/pairs")


def test_format_round_trips():
    configs = parse_model_config(CONFIG, base_dir="/x")
    again = parse_model_config(format_model_config(configs))
    assert again == configs


@pytest.mark.parametrize(
    "text, message",
    [
        ("model_config_list { config { name: 'a' } ", "does not parse"),
        ("", "must contain a model_config_list"),
        ("model_config_list {}", "lists no models"),
        ("model_config_list { config { base_path: '/a' } }", "no name"),
        ("model_config_list { config { name: 'a' } }", "no base_path"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' } "
            "config { name: 'a' base_path: '/b' } }",
            "appears twice",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' "
            "model_platform: 'pytorch' } }",
            "not supported",
        ),
        ("model_config_list { config { name: 'a' bogus: 1 } }", "does not parse"),
    ],
)
def test_bad_configs_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_model_config(text)


def test_resolve_versions_per_policy(tmp_path):
    base = str(tmp_path / "m")
    _make_versions(base, [1, 2, 10])
    assert available_versions(base) == [1, 2, 10]
    assert available_versions(str(tmp_path / "missing")) == []
    latest = ServedModelConfig("m", base)
    assert resolve_versions(latest) == [10]  # numeric, not lexical, order
    two = ServedModelConfig("m", base, num_versions=2)
    assert resolve_versions(two) == [2, 10]
    assert resolve_versions(ServedModelConfig("m", base, policy="all")) == [1, 2, 10]
    specific = ServedModelConfig("m", base, policy="specific", versions=(1, 2))
    assert resolve_versions(specific) == [1, 2]


def test_version_directories_keep_their_names_and_need_ascii_digits(tmp_path):
    base = str(tmp_path / "m")
    # '²', '³' and Arabic-Indic '٤' pass str.isdigit() but int() refuses some;
    # an integer beyond int64 is no version either (TF Serving ignores them).
    _make_versions(base, ["0001", "12", "\u00b2", "\u00b3", "\u0664", "9" * 20])
    assert available_versions(base) == [1, 12]
    assert version_directories(base) == {
        1: os.path.join(base, "0001"),
        12: os.path.join(base, "12"),
    }
    assert resolve_versions(ServedModelConfig("m", base)) == [12]
    # Two names for one version: the last in sorted order, as TF Serving.
    os.makedirs(os.path.join(base, "1"))
    open(os.path.join(base, "1", "saved_model.pb"), "wb").close()
    assert version_directories(base)[1] == os.path.join(base, "1")


def test_resolve_versions_errors(tmp_path):
    base = str(tmp_path / "m")
    _make_versions(base, [1, 2])
    with pytest.raises(ValueError, match=r"versions \[7\] not found"):
        resolve_versions(
            ServedModelConfig("m", base, policy="specific", versions=(1, 7))
        )
    with pytest.raises(ValueError, match="label 'stable' names version 1"):
        resolve_versions(ServedModelConfig("m", base, version_labels={"stable": 1}))
    with pytest.raises(ValueError, match="no version found"):
        resolve_versions(ServedModelConfig("e", str(tmp_path / "empty")))


def test_repository_configs_parse_and_agree():
    import os

    from conftest import REPO_ROOT

    configs = {}
    for name in ("models.config", "models.local.config"):
        configs[name] = load_model_config(os.path.join(REPO_ROOT, "serving", name))
    docker, local = configs["models.config"], configs["models.local.config"]
    assert [c.name for c in docker] == [c.name for c in local] == ["sentiment"]
    assert docker[0].base_path == "/models/sentiment"
    assert local[0].base_path.endswith(os.path.join("saved_models", "sentiment"))
