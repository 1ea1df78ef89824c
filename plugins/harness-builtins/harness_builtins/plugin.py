"""Entry-point module of the built-in plugins: lazy targets, nothing imported eagerly."""

from __future__ import annotations

from collections.abc import Mapping

from harness.hookspecs import hookimpl

_P = "harness_builtins"

DATASETS: Mapping[str, str] = {
    "synthetic.lesions": f"{_P}.datasets.synthetic_lesions:SyntheticLesions",
    "synthetic.findings": f"{_P}.datasets.synthetic_findings:SyntheticFindings",
    "xray.kermany_pneumonia": f"{_P}.datasets.kermany_pneumonia:KermanyPneumonia",
    "xray.chexpert": f"{_P}.datasets.chexpert:CheXpert",
    "xray.nih_chestxray14": f"{_P}.datasets.nih_chestxray14:NIHChestXray14",
}

MODELS: Mapping[str, str] = {
    "torchvision.resnet18": f"{_P}.models.torchvision_cnn:ResNet18",
    "torchvision.resnet50": f"{_P}.models.torchvision_cnn:ResNet50",
    "torchvision.vgg16": f"{_P}.models.torchvision_cnn:VGG16",
    "torchvision.vgg16_bn": f"{_P}.models.torchvision_cnn:VGG16BN",
    "torchvision.densenet121": f"{_P}.models.torchvision_cnn:DenseNet121",
}

EXPLAINERS: Mapping[str, str] = {
    "captum.grad_cam": f"{_P}.explainers.cam.grad_cam:GradCAM",
    "cam.grad_cam_plus_plus": f"{_P}.explainers.cam.grad_cam_plus_plus:GradCAMPlusPlus",
    "zennit.lrp_epsilon_plus_flat": f"{_P}.explainers.propagation.lrp:LRPEpsilonPlusFlat",
    "zennit.lrp_epsilon_gamma_box": f"{_P}.explainers.propagation.lrp:LRPEpsilonGammaBox",
    "captum.lime": f"{_P}.explainers.perturbation.lime:Lime",
    "captum.kernel_shap": f"{_P}.explainers.perturbation.kernel_shap:KernelShap",
    "captum.occlusion": f"{_P}.explainers.perturbation.occlusion:Occlusion",
    "captum.smoothgrad": f"{_P}.explainers.gradient.smoothgrad:SmoothGrad",
    "captum.integrated_gradients": f"{_P}.explainers.gradient.integrated_gradients:IntegratedGradients",
    "captum.input_x_gradient": f"{_P}.explainers.gradient.input_x_gradient:InputXGradient",
    "control.random": f"{_P}.explainers.control.random_attribution:RandomAttribution",
    "control.sobel": f"{_P}.explainers.control.edge_detector:SobelEdges",
    "control.mask": f"{_P}.explainers.control.mask_oracle:GroundTruthMask",
}


@hookimpl
def harness_datasets() -> Mapping[str, str]:
    """Register the built-in datasets."""
    return DATASETS


@hookimpl
def harness_models() -> Mapping[str, str]:
    """Register the built-in models."""
    return MODELS


@hookimpl
def harness_explainers() -> Mapping[str, str]:
    """Register the built-in explainers."""
    return EXPLAINERS
