"""TF Serving's `models.config` (a text-format `ModelServerConfig`) and version resolution.

    model_config_list {
      config {
        name: "sentiment"
        base_path: "saved_models/sentiment"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

As in TF Serving, `base_path` holds one directory per integer version
(`base_path/<version>/saved_model.pb`; `0001/` is version 1); the default
policy serves the highest version. TF Serving requires absolute base paths;
here relative ones are also accepted, resolved against the current directory
unless `base_dir` is given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

POLICIES = ("latest", "specific", "all")


@dataclasses.dataclass(frozen=True)
class ServedModelConfig:
    """One `config { ... }` entry of a model_config_list.

    Args:
        name: model name used in requests.
        base_path: directory holding integer-named version directories.
        model_platform: only "tensorflow" is served.
        policy: "latest", "specific" or "all".
        num_versions: how many of the newest versions `latest` serves.
        versions: the versions `specific` serves.
        version_labels: label -> version.
    """

    name: str
    base_path: str
    model_platform: str = "tensorflow"
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    version_labels: dict[str, int] = dataclasses.field(default_factory=dict)


def parse_model_config(
    text: str, base_dir: str | None = None
) -> list[ServedModelConfig]:
    """Parses a text-format `ModelServerConfig` with a `model_config_list`.

    Args:
        text: the file's contents.
        base_dir: directory that relative base paths are joined to (default:
            the current directory; TF Serving refuses relative paths).

    Raises:
        ValueError: the text does not parse, or an entry is unusable.
    """
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        raise ValueError(f"models.config does not parse: {error}") from error
    if proto.WhichOneof("config") != "model_config_list":
        raise ValueError("models.config must contain a model_config_list.")
    configs = []
    names = set()
    for entry in proto.model_config_list.config:
        if not entry.name:
            raise ValueError("A model config has no name.")
        if entry.name in names:
            raise ValueError(
                f"Model name {entry.name!r} appears twice in models.config."
            )
        names.add(entry.name)
        if not entry.base_path:
            raise ValueError(f"Model {entry.name!r} has no base_path.")
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise ValueError(
                f"Model {entry.name!r}: model_platform {platform!r} is not "
                "supported (only 'tensorflow')."
            )
        base_path = entry.base_path
        if not os.path.isabs(base_path):
            base_path = os.path.abspath(
                os.path.join(base_dir or os.getcwd(), base_path)
            )
        policy_proto = entry.model_version_policy
        policy = policy_proto.WhichOneof("policy_choice") or "latest"
        num_versions = 1
        versions: tuple[int, ...] = ()
        if policy == "latest":
            num_versions = policy_proto.latest.num_versions or 1
        elif policy == "specific":
            versions = tuple(sorted(set(policy_proto.specific.versions)))
            if not versions:
                raise ValueError(
                    f"Model {entry.name!r}: specific policy lists no versions."
                )
        configs.append(
            ServedModelConfig(
                name=entry.name,
                base_path=base_path,
                model_platform=platform,
                policy=policy,
                num_versions=num_versions,
                versions=versions,
                version_labels=dict(entry.version_labels),
            )
        )
    if not configs:
        raise ValueError("models.config lists no models.")
    return configs


def load_model_config(
    path: str, base_dir: str | None = None
) -> list[ServedModelConfig]:
    """Reads and parses a `models.config` file.

    Args:
        path: the file.
        base_dir: directory for relative base paths (default: current directory).
    """
    with open(path, encoding="utf-8") as f:
        return parse_model_config(f.read(), base_dir=base_dir)


def format_model_config(configs: list[ServedModelConfig]) -> str:
    """Writes configs back as text-format `ModelServerConfig` (TF Serving reads it).

    Args:
        configs: the entries to write.
    """
    proto = model_server_config_pb2.ModelServerConfig()
    for config in configs:
        entry = proto.model_config_list.config.add()
        entry.name = config.name
        entry.base_path = config.base_path
        entry.model_platform = config.model_platform
        if config.policy == "latest":
            entry.model_version_policy.latest.num_versions = config.num_versions
        elif config.policy == "specific":
            entry.model_version_policy.specific.versions.extend(config.versions)
        else:
            entry.model_version_policy.all.SetInParent()
        for label, version in config.version_labels.items():
            entry.version_labels[label] = version
    return text_format.MessageToString(proto)


_INT64_MAX = 2**63 - 1


def parse_version_directory(name: str) -> int | None:
    """The version a base path child names, or None when it names none.

    As TF Serving, a child is a version when its whole name is an integer
    (`1`, `0001`, ...) that fits in int64; any other child is ignored. Only
    ASCII digits count: `str.isdigit` also accepts digits such as '²'.

    Args:
        name: a directory name under the base path.
    """
    if not name or not name.isascii() or not name.isdigit():
        return None
    version = int(name)
    return version if version <= _INT64_MAX else None


def version_directories(base_path: str) -> dict[int, str]:
    """Version -> the directory that holds it, for children holding a SavedModel.

    The directory is the child's real name, which may differ from
    `str(version)` (`base_path/0001` is version 1). When two children name
    the same version (`1` and `0001`), the one last in sorted order is used,
    as TF Serving does.

    Args:
        base_path: the model's base directory.
    """
    if not os.path.isdir(base_path):
        return {}
    found: dict[int, str] = {}
    for entry in sorted(os.listdir(base_path)):
        version = parse_version_directory(entry)
        if version is None:
            continue
        path = os.path.join(base_path, entry)
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            found[version] = path
    return found


def available_versions(base_path: str) -> list[int]:
    """Integer-named subdirectories of `base_path` that hold a SavedModel, ascending.

    Args:
        base_path: the model's base directory.
    """
    return sorted(version_directories(base_path))


def choose_versions(
    config: ServedModelConfig,
    available: Sequence[int],
    failed: Collection[int] = (),
) -> list[int]:
    """The versions the config's policy wants served, ascending.

    Versions that failed to load are passed over, so that (as in TF Serving)
    a broken new version never replaces a working one: `latest {N}` takes the
    newest N of the others.

    Args:
        config: one model's config.
        available: versions found under the base path.
        failed: versions that failed to load (and have not changed since).
    """
    candidates = sorted(v for v in set(available) if v not in set(failed))
    if config.policy == "latest":
        return candidates[-config.num_versions :]
    if config.policy == "specific":
        return [v for v in config.versions if v in candidates]
    return candidates


def resolve_versions(
    config: ServedModelConfig, found: Collection[int] | None = None
) -> list[int]:
    """The versions the config's policy serves at start, ascending.

    Args:
        config: one model's config.
        found: the versions under the base path (default: listed now).

    Raises:
        ValueError: no version to serve, a `specific` version is missing, or a
            label names a version that is not served.
    """
    if found is None:
        found = available_versions(config.base_path)
    found = sorted(found)
    if config.policy == "specific":
        missing = [v for v in config.versions if v not in found]
        if missing:
            raise ValueError(
                f"Model {config.name!r}: versions {missing} not found under "
                f"{config.base_path}."
            )
    chosen = choose_versions(config, found)
    if not chosen:
        raise ValueError(
            f"Model {config.name!r}: no version found under {config.base_path} "
            "(expected integer-named directories holding saved_model.pb)."
        )
    for label, version in config.version_labels.items():
        if version not in chosen:
            raise ValueError(
                f"Model {config.name!r}: label {label!r} names version {version}, "
                f"which is not served (served: {chosen})."
            )
    return chosen
