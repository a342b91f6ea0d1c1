"""The local TF Serving-compatible server and its gRPC client.

  server.py       PredictionService over gRPC (LocalServer)
  servable.py     one loaded version: its signatures, warmup, metadata
  versions.py     versions under a base path: polling, latest-N, labels
  batching.py     merging concurrent requests into one run
  validation.py   request checks before any work (contract, limits)
  access_log.py   one line per request
  grpc_utils.py, protos.py   status codes; the TF Serving protos without
                  importing TensorFlow
  client.py       FastBertClient, which does not import TensorFlow

What it serves is written by fastbert_tf.export; the command line is
fastbert_tf.commands.serve.
"""
