"""TF Serving's configuration messages that tensorflow-serving-api does not ship.

`serving_config_pb2` is generated from `serving_config.proto` by `make proto`
and imports only `protobuf`. `BatchingParameters`, `MonitoringConfig`,
`PrometheusConfig` and `SSLConfig` have TF Serving's field names, numbers and
types, so TF Serving's text-format files parse into them unchanged.

Example:

>>> from google.protobuf import text_format
>>> text_format.Parse("max_batch_size { value: 64 }", BatchingParameters()).max_batch_size.value
64
"""

from memae_tf.serving.proto.serving_config_pb2 import (
    BatchingParameters,
    MonitoringConfig,
    PrometheusConfig,
    SSLConfig,
)

__all__ = ["BatchingParameters", "MonitoringConfig", "PrometheusConfig", "SSLConfig"]
