"""Loads the SavedModels a `models.config` names and runs TF Serving's three APIs on them.

Both servers (REST and gRPC) go through `ModelRegistry`, so they agree on
version resolution, input checks and error codes. Errors are `ServingError`s
carrying gRPC status code names, with TF Serving's messages where it has one.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops exports use)
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
)

from electra_keras.serving.errors import ServingError, invalid_argument, not_found
from electra_keras.serving.model_config import (
    ServedModelConfig,
    choose_versions,
    load_model_config,
    resolve_versions,
    version_directories,
)
from electra_keras.serving.warmup_replay import replay_warmup

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"

# TF error codes are the gRPC canonical codes.
_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


def _set_names(names) -> str:
    return "{" + ",".join(sorted(names)) + "}"


class Signature:
    """A loaded signature function with its input and output specs.

    Args:
        name: signature key.
        function: the concrete function (`loaded.signatures[name]`).
    """

    def __init__(self, name: str, function) -> None:
        self.name = name
        self.function = function
        _, kwargs = function.structured_input_signature
        self.inputs: dict[str, tf.TensorSpec] = dict(kwargs)
        self.outputs: dict[str, tf.TensorSpec] = dict(function.structured_outputs)

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
        """Checks names, dtypes, ranks and batch sizes; returns tensors to call with.

        Args:
            inputs: input name -> numpy array.

        Raises:
            ServingError: INVALID_ARGUMENT naming the problem.
        """
        sent, wanted = set(inputs), set(self.inputs)
        if sent != wanted:
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({_set_names(sent)}) != len({_set_names(wanted)}). Sent extra: "
                f"{_set_names(sent - wanted)}. Missing but required: "
                f"{_set_names(wanted - sent)}."
            )
        tensors = {}
        batch_sizes = {}
        for name, spec in self.inputs.items():
            array = inputs[name]
            tensors[name] = _to_tensor(name, array, spec)
            if array.ndim:
                batch_sizes[name] = array.shape[0]
        if len(set(batch_sizes.values())) > 1:
            raise invalid_argument(
                f"inputs have different batch sizes: {dict(sorted(batch_sizes.items()))}"
            )
        return tensors

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Checks the inputs and runs the signature.

        Args:
            inputs: input name -> numpy array.

        Raises:
            ServingError: bad inputs, or TensorFlow raised (its code and message).
        """
        tensors = self.check_inputs(inputs)
        try:
            outputs = self.function(**tensors)
        except tf.errors.OpError as error:
            raise ServingError(
                _CODE_NAMES.get(error.error_code, "UNKNOWN"), error.message
            ) from error
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from error
        return {name: value.numpy() for name, value in outputs.items()}


def _to_tensor(name: str, array: np.ndarray, spec: tf.TensorSpec) -> tf.Tensor:
    dtype = spec.dtype
    if dtype == tf.string:
        if array.dtype.kind not in "OSU":
            raise invalid_argument(
                f"input '{name}' expects {dtype.name} values but got {array.dtype.name}"
            )
        if array.dtype.kind == "O" and array.size:
            bad = next(
                (v for v in array.reshape(-1) if not isinstance(v, (bytes, str))), None
            )
            if bad is not None:
                raise invalid_argument(
                    f"input '{name}' expects string values but got "
                    f"{type(bad).__name__}: {bad!r}"
                )
    else:
        given = tf.as_dtype(array.dtype) if array.dtype.kind not in "OSU" else None
        if given != dtype:
            shown = given.name if given is not None else "string"
            raise invalid_argument(
                f"input '{name}' expects {dtype.name} values but got {shown}"
            )
    shape = spec.shape
    if shape.rank is not None:
        if array.ndim != shape.rank:
            raise invalid_argument(
                f"input '{name}' must have rank {shape.rank} (shape "
                f"{_shape_text(shape)}), got shape {list(array.shape)}"
            )
        for axis, (want, got) in enumerate(
            zip(shape.as_list(), array.shape, strict=True)
        ):
            if want is not None and want != got:
                raise invalid_argument(
                    f"input '{name}' dimension {axis} must be {want} (shape "
                    f"{_shape_text(shape)}), got shape {list(array.shape)}"
                )
    return tf.constant(array, dtype=dtype)


def _shape_text(shape: tf.TensorShape) -> str:
    return "[" + ",".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


class ServableVersion:
    """One loaded version of one model.

    Args:
        name: model name.
        version: integer version.
        path: the SavedModel directory.
    """

    def __init__(self, name: str, version: int, path: str) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.loaded = tf.saved_model.load(path)
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        # What TF Serving reports as metadata: the MetaGraphDef's SignatureDefs.
        self.signature_defs = dict(proto.meta_graphs[0].signature_def)
        self._signatures: dict[str, Signature] = {}
        self._lock = threading.Lock()

    def signature(self, name: str, for_classify: bool = False) -> Signature:
        """The named signature (empty name: `serving_default`).

        Args:
            name: signature key.
            for_classify: use the Classify API's error for unknown keys.

        Raises:
            ServingError: no such signature.
        """
        name = name or DEFAULT_SIGNATURE
        with self._lock:
            if name not in self._signatures:
                if name not in self.loaded.signatures:
                    if for_classify:
                        raise invalid_argument(
                            f"No signature was found with the name: {name}"
                        )
                    raise ServingError(
                        "FAILED_PRECONDITION",
                        f'Serving signature key "{name}" not found.',
                    )
                self._signatures[name] = Signature(name, self.loaded.signatures[name])
            return self._signatures[name]

    def model_spec(self, signature_name: str | None = None) -> model_pb2.ModelSpec:
        """The `ModelSpec` TF Serving puts in responses.

        Args:
            signature_name: the signature that ran, if any.
        """
        spec = model_pb2.ModelSpec(name=self.name)
        spec.version.value = self.version
        if signature_name is not None:
            spec.signature_name = signature_name
        return spec


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """Why a version is not served; kept until its files change.

    Args:
        error_code: gRPC status code name.
        error_message: what went wrong.
        fingerprint: the version directory and its files (names, sizes,
            mtimes) when the load was tried.
    """

    error_code: str
    error_message: str
    fingerprint: tuple


def _fingerprint(path: str) -> tuple:
    entries = []
    for root, _, files in os.walk(path):
        for file in files:
            full = os.path.join(root, file)
            try:
                info = os.stat(full)
            except OSError:
                continue
            entries.append(
                (os.path.relpath(full, path), info.st_size, info.st_mtime_ns)
            )
    return (path, *sorted(entries))


def _failure_of(error: Exception, fingerprint: tuple) -> LoadFailure:
    if isinstance(error, ServingError):
        code, message = error.code, error.message
    elif isinstance(error, tf.errors.OpError):
        code, message = _CODE_NAMES.get(error.error_code, "UNKNOWN"), error.message
    else:
        code, message = "UNKNOWN", f"{type(error).__name__}: {error}"
    return LoadFailure(code, message[:2000], fingerprint)


class ModelRegistry:
    """The models of a `models.config`, each version loaded once.

    At construction, every version the policies name is loaded (and its
    warmup requests replayed); any failure raises. `refresh` (called by a
    `VersionPoller`, as TF Serving polls base paths) then loads new versions,
    makes them available and unloads those the policy no longer wants; a
    version that fails to load is reported in `status` and never replaces a
    working one, and a model whose base path cannot be read is logged (see
    `poll_error`) without holding up the others. Requests resolve a version
    from a snapshot, so a swap never fails a request.

    Args:
        configs: parsed model configs.
        log: called with one line per version loaded, unloaded or failed.
    """

    def __init__(
        self,
        configs: Sequence[ServedModelConfig],
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.configs = {config.name: config for config in configs}
        self._log = log or (lambda message: None)
        self._lock = threading.Lock()  # publishing new version maps
        self._refresh_lock = threading.Lock()  # one refresh at a time
        # name -> version -> loaded version; each map is replaced, never changed.
        self._versions: dict[str, dict[int, ServableVersion]] = {}
        self._failures: dict[str, dict[int, LoadFailure]] = {}
        self._poll_errors: dict[str, str] = {}  # name -> why its last poll failed
        for config in configs:
            directories = version_directories(config.base_path)
            self._versions[config.name] = {
                version: self._load(config, version, directories[version])
                for version in resolve_versions(config, directories)
            }
            self._failures[config.name] = {}

    @staticmethod
    def _load(config: ServedModelConfig, version: int, path: str) -> ServableVersion:
        servable = ServableVersion(config.name, version, path)
        replay_warmup(servable)
        return servable

    @classmethod
    def from_config_file(
        cls,
        path: str,
        base_dir: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> ModelRegistry:
        """Loads every model a `models.config` file names.

        Args:
            path: the config file.
            base_dir: directory for relative base paths (default: current directory).
            log: as for the constructor.
        """
        return cls(load_model_config(path, base_dir=base_dir), log=log)

    @property
    def model_names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, name: str) -> list[int]:
        """Served versions of a model, ascending.

        Args:
            name: model name.
        """
        return sorted(self._versions.get(name, {}))

    def failures(self, name: str) -> dict[int, LoadFailure]:
        """Versions of a model that failed to load, with why.

        Args:
            name: model name.
        """
        return dict(self._failures.get(name, {}))

    def poll_error(self, name: str) -> str | None:
        """Why the last poll of a model's base path failed; None when it worked.

        Args:
            name: model name.
        """
        return self._poll_errors.get(name)

    # === New versions while serving ===
    def refresh(self) -> None:
        """Brings every model's served versions in line with its base path.

        A model whose poll fails (an unreadable base path...) keeps serving
        what it served, is logged and shown by `poll_error`, and does not
        stop the models after it from being refreshed.
        """
        with self._refresh_lock:
            for config in list(self.configs.values()):
                self._refresh_guarded(config)

    def apply_configs(self, configs: Sequence[ServedModelConfig]) -> None:
        """Serves a new model list: models added are loaded, removed ones unloaded.

        Unlike at construction, nothing raises: versions that fail to load
        are reported in `status`.

        Args:
            configs: the new config's entries.
        """
        with self._refresh_lock:
            new = {config.name: config for config in configs}
            with self._lock:
                removed = [name for name in self._versions if name not in new]
                self.configs = new
                for name in removed:
                    del self._versions[name]
                    self._failures.pop(name, None)
                    self._poll_errors.pop(name, None)
            for name in removed:
                self._log(f"model {name}: removed from the config, unloaded")
            for config in configs:
                self._refresh_guarded(config)

    def _refresh_guarded(self, config: ServedModelConfig) -> None:
        """Refreshes one model; a failure is logged (once until it changes)."""
        name = config.name
        try:
            self._refresh_model(config)
        except Exception as error:  # noqa: BLE001  (one model must not stop the rest)
            message = (
                f"model {name}: polling base path {config.base_path} failed: "
                f"{type(error).__name__}: {error}"
            )
            if self._poll_errors.get(name) != message:
                self._log(message)
            self._poll_errors[name] = message
            return
        if self._poll_errors.pop(name, None) is not None:
            self._log(f"model {name}: polling base path {config.base_path} works again")

    def _refresh_model(self, config: ServedModelConfig) -> None:
        name = config.name
        loaded = dict(self._versions.get(name, {}))
        failures = dict(self._failures.get(name, {}))
        directories = version_directories(config.base_path)
        available = sorted(directories)

        # A version that failed is tried again once its files change.
        for version, failure in list(failures.items()):
            if version not in directories or _fingerprint(directories[version]) != (
                failure.fingerprint
            ):
                del failures[version]
        while True:
            chosen = choose_versions(config, available, failures)
            missing = [v for v in chosen if v not in loaded]
            if not missing:
                break
            for version in missing:
                fingerprint = _fingerprint(directories[version])
                try:
                    loaded[version] = self._load(config, version, directories[version])
                except Exception as error:  # noqa: BLE001  (reported in status)
                    failures[version] = _failure_of(error, fingerprint)
                    self._log(
                        f"model {name}: version {version} failed to load: "
                        f"{failures[version].error_message[:300]}"
                    )
                else:
                    self._log(f"model {name}: version {version} loaded")
        if not chosen:
            chosen = sorted(loaded)  # nothing loadable: keep serving what works
        served = {v: loaded[v] for v in chosen}
        wanted = set(choose_versions(config, available))
        failures = {v: f for v, f in failures.items() if v in wanted}
        with self._lock:
            if self.configs.get(name) is not config:
                return  # removed or replaced meanwhile
            self._versions[name] = served
            self._failures[name] = failures
        for version in sorted(set(loaded) - set(served)):
            self._log(f"model {name}: version {version} unloaded")

    def get(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> ServableVersion:
        """Resolves a model spec to a loaded version (default: the highest).

        Args:
            name: model name.
            version: a specific version.
            label: a version label from the config.

        Raises:
            ServingError: NOT_FOUND for unknown models and versions,
                INVALID_ARGUMENT for unknown labels or both version and label.
        """
        if version is not None and label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) "
                "cannot be supplied."
            )
        versions = self._versions.get(name)
        if label:
            config = self.configs.get(name)
            if versions is None or config is None:
                raise not_found(f"Servable not found for request: Latest({name})")
            mapped = config.version_labels.get(label)
            if mapped is None:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = mapped
        if version is None:
            if not versions:
                raise not_found(f"Servable not found for request: Latest({name})")
            return versions[max(versions)]
        if not versions or version not in versions:
            raise not_found(
                f"Servable not found for request: Specific({name}, {version})"
            )
        return versions[version]

    # === Predict ===
    def predict(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        signature_name: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ) -> tuple[ServableVersion, str, dict[str, np.ndarray]]:
        """Runs a signature; returns (version, signature name, outputs).

        Args:
            name: model name.
            inputs: input name -> numpy array (strings as bytes/str arrays).
            signature_name: signature key (empty: `serving_default`).
            version: a specific version.
            label: a version label.
            output_filter: outputs to return (empty: all).
        """
        servable = self.get(name, version, label)
        signature_name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature(signature_name)
        unknown = [key for key in output_filter if key not in signature.outputs]
        if unknown:
            raise invalid_argument(
                f"output tensor alias not found in signature: {unknown[0]} Outputs "
                f"expected to be in the set {_set_names(signature.outputs)}."
            )
        outputs = signature(inputs)
        if output_filter:
            outputs = {key: outputs[key] for key in output_filter}
        return servable, signature_name, outputs

    def input_specs(
        self,
        name: str,
        signature_name: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, tf.TensorSpec]:
        """The input specs of a signature, for decoding JSON requests.

        Args:
            name: model name.
            signature_name: signature key (empty: `serving_default`).
            version: a specific version.
            label: a version label.
        """
        servable = self.get(name, version, label)
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in servable.loaded.signatures:
            raise invalid_argument(
                f'Serving signature name: "{signature_name}" not found in signature def'
            )
        return servable.signature(signature_name).inputs

    # === Classify ===
    def classify(
        self,
        name: str,
        serialized_examples: Sequence[bytes],
        signature_name: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> tuple[ServableVersion, str, classification_pb2.ClassificationResult]:
        """Runs a classify signature on serialized `tf.Example`s.

        Args:
            name: model name.
            serialized_examples: one serialized `tf.train.Example` per input.
            signature_name: signature key (empty: `serving_default`).
            version: a specific version.
            label: a version label.
        """
        servable = self.get(name, version, label)
        signature_name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature(signature_name, for_classify=True)
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if "inputs" not in signature.inputs:
            raise invalid_argument(
                f"No classification inputs found in signature {signature_name!r} "
                f"(inputs: {_set_names(signature.inputs)})."
            )
        if "classes" not in signature.outputs and "scores" not in signature.outputs:
            raise invalid_argument(
                "Expected classification signature outputs to contain at least one "
                f'of "classes" or "scores". Signature {signature_name!r} has outputs '
                f"{_set_names(signature.outputs)}."
            )
        if not serialized_examples:
            raise invalid_argument("Input is empty.")
        array = np.array(list(serialized_examples), dtype=object)
        outputs = signature({"inputs": array})
        classes, scores = outputs.get("classes"), outputs.get("scores")
        count = len(serialized_examples)
        for key, value in (("classes", classes), ("scores", scores)):
            if value is None:
                continue
            if value.ndim != 2:
                raise invalid_argument(
                    "Expected Tensor shape: [batch_size num_classes] but got "
                    f"{list(value.shape)} for output '{key}'"
                )
            if value.shape[0] != count:
                raise invalid_argument(
                    f"Expected {key} output batch size of {count}. Got: {value.shape[0]}"
                )
        if (
            classes is not None
            and scores is not None
            and classes.shape[1] != scores.shape[1]
        ):
            raise invalid_argument(
                "Tensors class and score should match in dim_size(1). Got "
                f"{classes.shape[1]} vs. {scores.shape[1]}"
            )
        if scores is not None and scores.dtype != np.float32:
            raise invalid_argument(
                f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}"
            )
        num_classes = (classes if classes is not None else scores).shape[1]
        result = classification_pb2.ClassificationResult()
        for row in range(count):
            item = result.classifications.add()
            for column in range(num_classes):
                cls = item.classes.add()
                if classes is not None:
                    value = classes[row, column]
                    cls.label = (
                        value.decode("utf-8", "replace")
                        if isinstance(value, bytes)
                        else str(value)
                    )
                if scores is not None:
                    cls.score = float(scores[row, column])
        return servable, signature_name, result

    # === Metadata and status ===
    def metadata(
        self,
        name: str,
        version: int | None = None,
        label: str | None = None,
        fields: Sequence[str] = (SIGNATURE_DEF_FIELD,),
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """TF Serving's `GetModelMetadataResponse` (signature defs in an `Any`).

        Args:
            name: model name.
            version: a specific version.
            label: a version label.
            fields: requested metadata fields; only "signature_def" exists.
        """
        if not fields:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self.get(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.CopyFrom(servable.model_spec(""))
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """TF Serving's `GetModelStatusResponse`.

        Served versions are AVAILABLE; versions that failed to load are END
        with the load's error code and message.

        Args:
            name: model name.
            version: only this version.
            label: only the version this label names.
        """
        versions = self._versions.get(name) or {}
        failures = self._failures.get(name) or {}
        if not versions and not failures:
            raise not_found(f"Could not find any versions of model {name}")
        if label:
            version = self.get(name, label=label).version
        if version is not None and version not in versions and version not in failures:
            raise not_found(f"Could not find version {version} of model {name}")
        known = set(versions) | set(failures)
        chosen = [version] if version is not None else sorted(known, reverse=True)
        codes = {code_name: number for number, code_name in _CODE_NAMES.items()}
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in chosen:
            item = response.model_version_status.add()
            item.version = number
            if number in versions:
                item.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                item.status.SetInParent()
            else:
                failure = failures[number]
                item.state = get_model_status_pb2.ModelVersionStatus.END
                item.status.error_code = codes.get(failure.error_code, 2)
                item.status.error_message = failure.error_message
        return response
