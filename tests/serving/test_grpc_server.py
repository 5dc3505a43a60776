"""TF Serving's gRPC services on the stand-in model, through the generated stubs."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.model_config import ServedModelConfig
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.testing import expected_scores, export_stand_in


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    export_stand_in(str(base / "m"), 2)
    registry = ModelRegistry(
        [
            ServedModelConfig(
                "m", str(base / "m"), policy="all", version_labels={"stable": 1}
            )
        ]
    )
    server = GrpcServer(registry, "127.0.0.1", 0).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()
    server.stop()


def _predict_request(texts, signature="", version=None, label=None, name="m"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    if texts is not None:
        request.inputs["text"].CopyFrom(
            tf.make_tensor_proto(np.array(texts, dtype=object), dtype=tf.string)
        )
    return request


def _status_ok(stubs):
    response = stubs[1].GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "m"}), timeout=30
    )
    assert response.model_version_status[0].state == 30  # AVAILABLE


def _code(stubs, method, request):
    with pytest.raises(grpc.RpcError) as info:
        method(request, timeout=30)
    _status_ok(stubs)  # the server keeps serving
    return info.value.code(), info.value.details()


def test_predict(stubs):
    texts = ["hello", "", "   ", "x" * 50_000, "naïve 😀", b"\xff\xfe"]
    response = stubs[0].Predict(_predict_request(texts), timeout=30)
    assert response.model_spec.name == "m"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"]), expected_scores(texts), rtol=1e-6
    )
    assert tf.make_ndarray(response.outputs["labels"])[0] == b"positive"


def test_versions_labels_and_output_filter(stubs):
    request = _predict_request(["a"], label="stable")
    request.output_filter.append("labels")
    response = stubs[0].Predict(request, timeout=30)
    assert response.model_spec.version.value == 1
    assert set(response.outputs) == {"labels"}
    response = stubs[0].Predict(_predict_request(["a"], version=2), timeout=30)
    assert response.model_spec.version.value == 2


def test_zero_batch_is_a_defined_result(stubs):
    response = stubs[0].Predict(_predict_request([]), timeout=30)
    assert tf.make_ndarray(response.outputs["scores"]).shape == (0, 2)


def test_token_id_signature(stubs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "serving_token_ids"
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=np.int32)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        request.inputs[name].CopyFrom(tf.make_tensor_proto(mask))
    response = stubs[0].Predict(request, timeout=30)
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"]),
        expected_scores(["abc", "a"]),
        rtol=1e-6,
    )


def test_classify(stubs):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "classify"
    for text in (b"abc", b""):
        example = request.input.example_list.examples.add()
        example.features.feature["text"].bytes_list.value.append(text)
    response = stubs[0].Classify(request, timeout=30)
    assert response.model_spec.signature_name == "classify"
    result = response.result.classifications
    assert [[c.label for c in r.classes] for r in result] == [
        ["negative", "positive"]
    ] * 2
    np.testing.assert_allclose(
        [[c.score for c in r.classes] for r in result],
        expected_scores(["abc", ""]),
        rtol=1e-6,
    )


def test_metadata_and_status(stubs):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "m"
    request.metadata_field.append("signature_def")
    response = stubs[0].GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert (
        signatures.signature_def["serving_default"].inputs["text"].dtype
        == tf.string.as_datatype_enum
    )
    status = stubs[1].GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "m"}), timeout=30
    )
    assert [s.version for s in status.model_version_status] == [2, 1]
    assert status.model_version_status[0].status.error_code == 0


def _with_inputs(**arrays):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    for name, value in arrays.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "request_fn, code, message",
    [
        (
            lambda: _predict_request(["a"], signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'key "nope" not found',
        ),
        (lambda: _predict_request(None), INVALID, "Missing but required: {text}"),
        (lambda: _with_inputs(txt=np.array([b"a"])), INVALID, "Sent extra: {txt}"),
        (
            lambda: _with_inputs(text=np.array([1, 2])),
            INVALID,
            "expects string values but got int64",
        ),
        (lambda: _with_inputs(text=np.array([[b"a"]])), INVALID, "must have rank 1"),
        (lambda: _predict_request(["a"], name="nope"), NOT_FOUND, "Latest(nope)"),
        (lambda: _predict_request(["a"], version=7), NOT_FOUND, "Specific(m, 7)"),
        (lambda: _predict_request(["a"], label="beta"), INVALID, "label: beta"),
    ],
)
def test_bad_predicts(stubs, request_fn, code, message):
    got, details = _code(stubs, stubs[0].Predict, request_fn())
    assert got == code and message in details, details


def test_bad_output_filter_and_tensor_proto(stubs):
    request = _predict_request(["a"])
    request.output_filter.append("logits")
    got, details = _code(stubs, stubs[0].Predict, request)
    assert got == INVALID and "output tensor alias not found" in details
    request = _predict_request(None)
    proto = request.inputs["text"]
    proto.dtype = tf.int32.as_datatype_enum
    proto.tensor_shape.dim.add().size = 2
    proto.tensor_content = b"\x00\x01\x02"  # 3 bytes for 2 int32s
    got, details = _code(stubs, stubs[0].Predict, request)
    assert got == INVALID and "not a valid TensorProto" in details


def test_bad_classify_and_metadata(stubs):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "classify"
    got, details = _code(stubs, stubs[0].Classify, request)
    assert got == INVALID and "empty" in details
    request.input.example_list.examples.add()  # no "text" feature
    got, details = _code(stubs, stubs[0].Classify, request)
    assert got == INVALID and "text" in details
    request.model_spec.signature_name = ""
    got, details = _code(stubs, stubs[0].Classify, request)
    assert got == INVALID and "No classification inputs" in details
    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = "m"
    got, details = _code(stubs, stubs[0].GetModelMetadata, meta)
    assert got == INVALID and "at least one metadata_field" in details
    meta.metadata_field.append("graph")
    got, details = _code(stubs, stubs[0].GetModelMetadata, meta)
    assert got == INVALID and "graph is not supported" in details
    status = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "nope"})
    got, _ = _code(stubs, stubs[1].GetModelStatus, status)
    assert got == NOT_FOUND
