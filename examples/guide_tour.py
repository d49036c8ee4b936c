"""A tour of the guide's CNN classifier, built by brickwork with its sizes inferred.

Prints the guide's model built with its exact arguments for 28×28 inputs, its parameter count and
a forward pass; then the same family built for scikit-learn's bundled handwritten digits (8×8
images, 10 classes), its module tree, a forward pass on real digits and a trace of two layers.
"""

import torch

import brickwork


def main() -> None:
    torch.manual_seed(0)

    print("The guide's classifier: CNNClassifier(1, [32, 64], [1024, 512], 10, activation='lrelu')")
    guide = brickwork.CNNClassifier(1, [32, 64], [1024, 512], 10, activation="lrelu")
    print(guide)
    print(f"parameters: {brickwork.count_params(guide):,}  (the guide's figure: 51,930,186)")
    batch = torch.randn(16, 1, 28, 28)
    print(f"forward: {tuple(batch.shape)} -> {tuple(guide(batch).shape)}\n")

    try:
        from sklearn.datasets import load_digits
    except ImportError:  # the dev extra brings scikit-learn; `make demo` installs it
        print("scikit-learn is not installed: skipping the digits batch")
        return
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    labels = torch.tensor(digits.target)
    print(f"digits: {images.shape[0]} images of {tuple(images.shape[1:])}, 10 classes")

    model = brickwork.CNNClassifier(1, [32, 64], [256], 10, input_shape=(8, 8), activation="lrelu")
    print("CNNClassifier(1, [32, 64], [256], 10, input_shape=(8, 8)): the decoder's first layer is")
    print(f"  {model.decoder.dec_blocks[0][0]}  <- 64 x 8 x 8, inferred")
    print(brickwork.tree(model))
    model.eval()
    with torch.no_grad():
        logits = model(images[:64])
    accuracy = (logits.argmax(1) == labels[:64]).float().mean().item()
    print(f"forward: {tuple(images[:64].shape)} -> {tuple(logits.shape)}")
    print(f"untrained accuracy on those 64 digits: {accuracy:.0%} (chance is about 10%)")
    outputs = brickwork.trace(model, images[:4], names=["encoder.conv_blocks.0", "encoder"])
    for name, out in outputs.items():
        print(f"trace {name}: {tuple(out.shape)}")


if __name__ == "__main__":
    main()
