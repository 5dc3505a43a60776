"""Serving: TF Serving clients (REST, gRPC) and a local server that speaks TF Serving's APIs.

Clients import light; the servers (`ModelRegistry`, `RestServer`,
`GrpcServer`) load TensorFlow models and are imported from their modules.
"""

from electra_keras.serving.client import GrpcClient, RestClient, parse_address
from electra_keras.serving.errors import ServingError

__all__ = ["GrpcClient", "RestClient", "ServingError", "parse_address"]
