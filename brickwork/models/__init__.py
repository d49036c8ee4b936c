"""Model families, each registered in :data:`brickwork.registry.MODELS`."""

from brickwork.models.cnn import CNNClassifier, Decoder, Encoder, cnn_classifier
from brickwork.models.stack import LayerStack

__all__ = ["CNNClassifier", "Decoder", "Encoder", "LayerStack", "cnn_classifier"]
