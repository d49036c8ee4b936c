"""The guide's classifier as specs: a brick list (YAML text) and a family (a dict)."""

GUIDE_YAML = """
input: [1, 28, 28]            # per-sample shape, no batch dimension
model:
  - conv_block: {out: 32, kernel_size: 3, padding: 1, activation: lrelu}
  - conv_block: {out: 64, kernel_size: 3, padding: 1, activation: lrelu}
  - flatten
  - dec_block: {out: 1024}
  - dec_block: {out: 512}
  - linear: {out: 10}
"""
GUIDE_FAMILY = {
    "input": [1, 28, 28],
    "model": {"cnn_classifier": {"enc_sizes": [32, 64], "dec_sizes": [1024, 512], "n_classes": 10}},
}
