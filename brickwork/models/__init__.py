"""Model families, each registered in :data:`brickwork.registry.MODELS`."""

from brickwork.models.cnn import CNNClassifier, Decoder, Encoder, cnn_classifier
from brickwork.models.factory import create_model, list_models, register_model
from brickwork.models.resnet import BasicBlock, Bottleneck, ResNet
from brickwork.models.small import MLP, SimpleConvNet
from brickwork.models.stack import LayerStack
from brickwork.models.unet import UNet

__all__ = [
    "MLP",
    "BasicBlock",
    "Bottleneck",
    "CNNClassifier",
    "Decoder",
    "Encoder",
    "LayerStack",
    "ResNet",
    "SimpleConvNet",
    "UNet",
    "cnn_classifier",
    "create_model",
    "list_models",
    "register_model",
]
