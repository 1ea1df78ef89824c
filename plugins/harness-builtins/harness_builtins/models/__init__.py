"""Built-in models: torchvision CNNs with any number of input channels and outputs."""
