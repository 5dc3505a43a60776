"""Every op in an exported graph must be one TF Serving can run: core TensorFlow
or one of the tensorflow-text ops it links (`SERVING_TF_TEXT_OPS`).

Core ops are read from a fresh process that imported only tensorflow (importing
tensorflow_text, as this test process does, registers its ops too).
"""

import json

import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

from electra_keras.export import export_classifier
from electra_keras.export.saved_model import SERVING_TF_TEXT_OPS
from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import ElectraClassifierPreprocessor

from conftest import run_python

VOCAB = "[PAD] [UNK] [CLS] [SEP] [MASK] the film was good bad ##s".split()

CORE_OPS_CODE = """
    import json
    import sys

    import tensorflow  # noqa: F401 (registers the core ops; nothing else)
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    assert "tensorflow_text" not in sys.modules
    op_list = op_def_pb2.OpList()
    op_list.ParseFromString(
        pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList())
    )
    print(json.dumps(sorted(op.name for op in op_list.op)))
"""


def graph_ops(export_dir):
    """Op types of every node, in the graph and in all its function defs."""
    proto = saved_model_pb2.SavedModel()
    with open(f"{export_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


@pytest.fixture(scope="module")
def core_ops():
    ops = set(json.loads(run_python(CORE_OPS_CODE).strip().splitlines()[-1]))
    assert len(ops) > 1000 and "MatMul" in ops
    return ops


@pytest.mark.parametrize(
    "pair, num_labels, compute_dtype",
    [(False, 2, "float32"), (True, 1, "float32"), (False, 2, "bfloat16")],
)
def test_exported_ops_are_served_by_tf_serving(
    tmp_path, core_ops, pair, num_labels, compute_dtype
):
    backbone = ElectraBackbone(
        vocab_size=len(VOCAB),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    model = ElectraClassifier(
        backbone,
        num_labels,
        preprocessor=ElectraClassifierPreprocessor(VOCAB, seq_len=8),
    )
    path = export_classifier(
        model, "m", base_dir=tmp_path, pair=pair, compute_dtype=compute_dtype
    )
    ops = graph_ops(path)
    print(sorted(ops))
    outside = ops - core_ops - set(SERVING_TF_TEXT_OPS)
    assert not outside, f"ops TF Serving may not have: {sorted(outside)}"
    # The tokenizer really is in the graph, through the allowed ops only.
    assert set(SERVING_TF_TEXT_OPS) <= ops
    assert {"UnicodeTranscode", "InitializeTableFromTextFileV2"} <= ops
    assert not set(SERVING_TF_TEXT_OPS) & core_ops


def test_core_ops_exclude_tensorflow_text(core_ops):
    # The reference set is really "TensorFlow alone": no tf-text op in it.
    assert not {"CaseFoldUTF8", "FastBertNormalize", "TFText>RoundRobinTrim"} & core_ops
    assert np.isin(["UnicodeTranscode", "ParseExampleV2"], sorted(core_ops)).all()
