"""Helpers shared by the tests, one module per topic; each helper is defined once here.

``paths`` (repository folders), ``configs`` (transform ops and small training configs), ``fashion_mnist`` (real
Fashion-MNIST images on disk), ``cli`` (``python -m ssld`` in a subprocess), ``models`` (a tiny classifier),
``photos`` (real photographs and edited copies for dedup), ``pipeline`` (pipeline files and finished runs).
"""
