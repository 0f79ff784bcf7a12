"""Using a trained model outside training: export to ONNX/TorchScript with a parity check (:mod:`.export`), and
prediction on image files with a PyTorch, ONNX or TorchScript model (:mod:`.predict`)."""
